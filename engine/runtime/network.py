"""The network for a card, a tile shape and a device: the one question the runs ask.

`network_for` applies the rules of `engine.runtime.choice`, then for OpenVINO finds the
converted network in the cache or converts it (once, under a lock, with progress), checks it
against torch on the probe tile, and compiles it. A network that failed its check is never
used: `auto` falls back to torch with one log line, `--backend openvino` stops with
`RuntimeCheckFailed`.

torch is never imported here: a conversion's torch side (the trace, torch's logits on the
probe) runs in a child process (`engine.runtime.torch_child`), and this process compiles and
checks the graph; a cache hit loads and runs the converted network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import RuntimeCheckFailed
from engine.models.architectures import Architecture
from engine.models.card import ModelCard
from engine.progress import Reporter
from engine.runtime.cache import EntryCache, EntryKey
from engine.runtime.choice import RuntimeChoice, plan_runtime
from engine.runtime.cpu_features import CpuFeatures, read_cpu_features

# normalised (B, C, H, W) float32 tiles in, the map's logits out: a converted network's call
ArrayForward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RuntimeNetwork:
    """What a run calls: `forward` (None: the predictor's own torch network) and the choice."""

    forward: ArrayForward | None
    choice: RuntimeChoice


@dataclass(frozen=True)
class NetworkSource:
    """What the runtime needs to know of a loaded model.

    Attributes:
        card: the resolved card (channels, logits).
        architecture: its family (its forward, whether it takes extra inputs).
        weights_sha256: a function giving the checkpoint's SHA-256 (read only on OpenVINO).
        weights_path: the checkpoint (a conversion's child process builds the network from it).
        release_torch: lets a torch network built in the run go, before a conversion or a
            cache hit, so it and the compiled network are never held together.
    """

    card: ModelCard
    architecture: Architecture
    weights_sha256: Callable[[], str]
    weights_path: Path
    release_torch: Callable[[], None] = lambda: None


def openvino_version() -> str | None:
    """OpenVINO's version, or None when it cannot be imported."""
    try:
        from engine.runtime.openvino_net import version
    except ImportError:
        return None
    return version()


def network_for(
    source: NetworkSource,
    device: str,
    precision: str,
    shape: tuple[int, int],
    backend: str,
    threads: int | None,
    normalize: Callable[[np.ndarray], np.ndarray],
    reporter: Reporter,
    cpu: CpuFeatures | None = None,
    cache: EntryCache | None = None,
) -> RuntimeNetwork:
    """The network for this card, tile shape (height, width) and device; see the module doc.

    `normalize` turns raw tiles into the network's float32 input, as the predictor does (the
    probe goes through it). `cpu` and `cache` default to this machine's.
    """
    card = source.card
    plan = plan_runtime(
        backend,
        device,
        precision,
        not source.architecture.uses_sentinel2,
        cpu or read_cpu_features(),
        openvino_version(),
    )
    if plan.runtime == "torch":
        return RuntimeNetwork(None, plan)
    from engine.runtime import openvino_net

    cache = cache or EntryCache()
    height, width = shape
    key = EntryKey(
        model=card.name,
        weights_sha256=source.weights_sha256(),
        architecture=card.architecture,
        encoder=card.encoder,
        shape=(1, len(card.channels), height, width),
        channels=tuple(card.channels),
        num_logits=card.num_logits,
        precision=precision,
        runtime_version=openvino_net.version(),
    )
    entry = cache.find(key)
    if entry is None:

        def waiting(lock: Any) -> None:
            reporter.log(f"another run is converting {card.name}; waiting for it (lock {lock})")

        with cache.locked(key, waiting):
            entry = cache.find(key)  # the run we waited for has built it
            if entry is not None:
                reporter.log(f"{card.name}: converted by the other run, found in {entry.folder}")
            else:
                if cache.discard(cache.path(key)):
                    reporter.log(
                        f"the cached conversion {cache.path(key)} is incomplete or corrupt: "
                        "converting again",
                        "WARNING",
                    )
                entry = cache.write(
                    key,
                    lambda folder: _convert_and_check(
                        source, key, folder, normalize, threads, reporter
                    ),
                )
    else:
        reporter.log(f"{card.name}: converted network loaded from the cache {entry.folder}")
    check = entry.check
    if not check["passed"]:
        fp32 = check["fp32"]
        why = (
            f"the OpenVINO conversion of {card.name} disagrees with torch on the probe tile "
            f"(max logit difference {fp32['max_abs_diff']:.3g}, allowed {check['tolerance']:.3g}; "
            f"{fp32['same_class_pct']:.1f} % same class)"
        )
        if plan.asked == "openvino":
            raise RuntimeCheckFailed(
                f"{why}: it is not used; run with --backend torch (or auto)",
                option="--backend",
                value="openvino",
                model=card.name,
            )
        return RuntimeNetwork(
            None, plan.but(runtime="torch", reason=f"auto: {why}; torch runs it", check=check)
        )
    source.release_torch()  # a cache hit: the converted network stands in for it
    started = time.perf_counter()
    network = openvino_net.OpenVinoNetwork(entry.graph, precision, threads)
    reason = (
        f"{plan.reason}, converted network checked against torch (max logit difference "
        f"{check['fp32']['max_abs_diff']:.2g} of {check['fp32']['logit_scale']:.3g}), compiled "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return RuntimeNetwork(
        network, plan.but(reason=reason, cache_entry=str(entry.folder), check=check)
    )


def _convert_and_check(
    source: NetworkSource,
    key: EntryKey,
    folder: Any,
    normalize: Callable[[np.ndarray], np.ndarray],
    threads: int | None,
    reporter: Reporter,
) -> dict[str, Any]:
    """Convert into `folder` and return the check. torch's side runs in a child process
    (`engine.runtime.torch_child`): this one compiles and checks the graph without torch. A
    graph traced at a smaller tile that fails the check is converted again at the run's own
    shape."""
    from engine.runtime import openvino_net

    _, channels, height, width = key.shape
    reporter.log(
        f"converting {key.model} to OpenVINO for {height} x {width} px tiles (once; cached in "
        f"{folder.parent}, set FLAIR_CACHE_DIR to move it)"
    )
    reporter.start("conversion", 3, "steps")
    probe = np.ascontiguousarray(normalize(openvino_net.probe_tile(channels, height, width)))
    reference = None
    seconds = 0.0
    for small in (True, False):
        logits, spent, traced_small = _trace(
            source, probe, folder, small, reference is None, threads, reporter
        )
        reference = reference if logits is None else logits
        seconds += spent
        if small:
            reporter.advance(1)
        result = openvino_net.check(folder / "model.xml", reference, probe, key.precision, threads)
        if result["passed"] or not traced_small:  # the run's own shape: nothing else to try
            break
        reporter.log(
            f"the graph of {key.model} traced at a smaller tile disagrees with torch: "
            f"converting again at {height} x {width} px"
        )
    result["conversion_s"] = round(seconds, 2)
    reporter.advance(1)
    return result


def _trace(
    source: NetworkSource,
    probe: np.ndarray,
    folder: Any,
    small: bool,
    with_reference: bool,
    threads: int | None,
    reporter: Reporter,
) -> tuple[np.ndarray | None, float, bool]:
    """`engine.runtime.torch_child.trace` for `source`, any network built here let go first
    (the child builds its own from the checkpoint)."""
    from engine.runtime import torch_child

    source.release_torch()
    return torch_child.trace(
        source.card, source.weights_path, probe, folder, small, with_reference, threads, reporter
    )
