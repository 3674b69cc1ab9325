"""Runtimes: the network for a card, a tile shape and a device, in torch or OpenVINO.

`engine.runtime.network.network_for` is the one entry: it takes a built torch network and
returns a `RuntimeNetwork`, a callable with the torch network's inputs and outputs (normalised
tiles in, logits out) plus the `RuntimeChoice` that says which runtime and precision run it and
why. The predictor, region workers and evaluation ask it; none of them names a runtime.

- `choice`: the backends, `RuntimeChoice` (the `done` event's `runtime` record), the rules.
- `cpu_features`: what the CPU can do natively (bf16), read from /proc/cpuinfo.
- `cache`: converted networks on disk, keyed by content, written atomically under a lock.
- `openvino_net`: conversion to OpenVINO IR, compilation, the check against torch.
"""
