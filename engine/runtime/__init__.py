"""Runtimes: the network for a card, a tile shape and a device, in torch or OpenVINO.

`engine.runtime.network.network_for` is the one entry: given what it needs of a loaded model
(the torch network only if a conversion needs it), it returns a `RuntimeNetwork`, a callable
(normalised tiles in, logits out; None: the predictor's own torch network) plus the
`RuntimeChoice` that says which runtime and precision run it and why. The predictor, region
workers and evaluation ask it; none of them names a runtime.

- `choice`: the backends, `RuntimeChoice` (the `done` event's `runtime` record), the rules.
- `cpu_features`: what the CPU can do natively (bf16), read from /proc/cpuinfo.
- `cache`: converted networks on disk, keyed by content, written atomically under a lock.
- `cached_cards`: the card each checkpoint resolved to, so a cached run never builds torch.
- `openvino_net`: compiling and running a converted network, the check against torch.
- `conversion`: tracing a torch network to OpenVINO IR (the one part that imports torch).
- `torch_child`: the card's resolution and the conversion's torch side, in a child process,
  so that the run itself never imports torch.

OpenVINO's telemetry is kept off for every import of OpenVINO that goes through here: `import
openvino` otherwise sends a usage event to Google Analytics from a forked process (consent is
assumed where no consent file exists), and that fork inherited the run's open files, which kept
a killed run's destination locks held. `None` in `sys.modules` makes `import
openvino_telemetry` fail, and OpenVINO then uses its own silent stub.
"""

import sys

sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
