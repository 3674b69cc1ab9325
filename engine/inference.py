"""Running a loaded model on batches of raw tiles and turning logits into FLAIR codes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from engine.device import DeviceChoice, choose_device
from engine.models.architectures import Architecture, ExtraInputs
from engine.models.card import ModelCard
from engine.models.checkpoint import read_state_dict
from engine.models.loader import LoadedModel
from engine.progress import Reporter
from engine.runtime.choice import RuntimeChoice, plan_runtime
from engine.runtime.cpu_features import read_cpu_features
from engine.runtime.network import (
    NetworkSource,
    RuntimeNetwork,
    network_for,
    openvino_version,
    weights_hasher,
)


@dataclass(frozen=True)
class PredictionBatch:
    """Per-pixel results of one batch, all (B, H, W) except `probabilities` (B, K, H, W)."""

    codes: np.ndarray  # uint8 FLAIR codes, never an inactive code
    confidence: np.ndarray | None = None  # uint8, top softmax probability in percent
    probabilities: np.ndarray | None = None  # uint8 percent, one plane per active code


class Predictor:
    """A model on a device, ready to map raw band values to FLAIR codes.

    Inputs are raw band values in the card's channel order (0..255 scale); normalisation,
    masking of inactive logits and the logit-to-code mapping happen here, so every caller
    (predict, evaluate, tests) gets the same numbers.

    The network itself comes from the runtime layer (`engine.runtime`), asked once per tile
    shape: torch, or an OpenVINO network checked against torch. Once OpenVINO runs, the torch
    network is let go (it is rebuilt from the checkpoint only if another shape needs it).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        threads: int | None = None,
        precision: str = "auto",
        backend: str | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.loaded = loaded  # kept so a cached predictor can stand in for a fresh load
        self.card: ModelCard = loaded.card
        self.architecture: Architecture = loaded.architecture
        self.choice: DeviceChoice = choose_device(device, precision)
        self.backend = backend  # None: $FLAIR_BACKEND, else auto (engine.runtime.choice)
        self.threads = threads
        self.reporter = reporter or Reporter()
        self._runtimes: dict[tuple[int, int], RuntimeNetwork] = {}
        self.network: torch.nn.Module | None = self._placed(loaded.network)
        card = self.card
        n = len(card.channels)
        norm = card.normalization
        mean = norm.mean or (0.0,) * n
        std = norm.std or (1.0,) * n
        dev = self.choice.device
        self._divisor = float(norm.divisor)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=dev).view(1, n, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=dev).view(1, n, 1, 1)
        inactive = [i for i, c in enumerate(card.logit_codes) if c in card.inactive_codes]
        bias = torch.zeros(card.num_logits, dtype=torch.float32)
        bias[inactive] = float("-inf")
        self._logit_bias = bias.to(dev).view(1, -1, 1, 1)
        self.active_codes = card.active_codes
        lut = torch.tensor(card.logit_codes, dtype=torch.uint8)
        self._code_lut = lut.numpy()  # logit index -> FLAIR code, for CPU logits
        self._code_of_logit = lut.to(dev)
        # logits that share one code (e.g. "other") are summed into that code's probability
        self._logits_of_code = [
            [i for i, c in enumerate(card.logit_codes) if c == code] for code in self.active_codes
        ]

    @property
    def device(self) -> torch.device:
        return self.choice.device

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """The tile shapes this predictor has run (or prepared), each with its runtime."""
        return tuple(self._runtimes)

    def runtime_for(
        self, shape: tuple[int, int], reporter: Reporter | None = None
    ) -> RuntimeChoice:
        """The runtime that runs tiles of `shape` (height, width), asked once per shape."""
        shape = (int(shape[0]), int(shape[1]))
        if shape not in self._runtimes:
            source = NetworkSource(
                self.card,
                self.architecture,
                weights_hasher(self.loaded.weights_path),
                self._torch,
                self._release_torch,
            )
            device = str(self.device) if self.choice.is_cuda else "cpu"
            runtime = network_for(
                source,
                device,
                self.choice.precision,
                shape,
                self.backend,
                self.threads,
                self.normalize,
                reporter or self.reporter,
            )
            self._runtimes[shape] = runtime
        return self._runtimes[shape].choice

    def _release_torch(self) -> None:
        """Let the torch network go (OpenVINO runs): never it and the compiled one together.

        Its weights are freed in place (moved to torch's storage-less "meta" device), so a
        caller's reference to the loaded model (the run's plan, a region's coordinator) does
        not keep them; `_torch` rebuilds the network from the checkpoint if it is asked again.
        """
        if self.network is not None:
            self.network.to(device="meta")
        self.network = None
        self.loaded = replace(self.loaded, network=None)

    def normalize(
        self, images: np.ndarray, memory_format: torch.memory_format = torch.channels_last
    ) -> torch.Tensor:
        """(B, C, H, W) raw values -> normalised float32 tensor on the device (channels-last
        for torch, NCHW for OpenVINO)."""
        x = torch.from_numpy(np.ascontiguousarray(images))
        if self.choice.is_cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.to(torch.float32)
        if self._divisor != 1.0:
            x = x / self._divisor
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=memory_format)

    def logits(self, images: np.ndarray, extras: ExtraInputs | None = None) -> torch.Tensor:
        """Raw float32 logits (B, K, H, W) on the device, inactive logits still present."""
        shape = (int(images.shape[-2]), int(images.shape[-1]))
        self.runtime_for(shape)
        runtime = self._runtimes[shape]
        x = self.normalize(images, runtime.memory_format)
        if runtime.forward is not None:
            with torch.inference_mode():
                return runtime.forward(x)
        with torch.inference_mode(), self._autocast():
            out = self.architecture.forward(self._torch(), x, extras)
        return out.float()

    def _placed(self, network: torch.nn.Module) -> torch.nn.Module:
        network = network.to(self.choice.device).eval()
        return network.to(memory_format=torch.channels_last)

    def _torch(self) -> torch.nn.Module:
        """The torch network, rebuilt from the checkpoint if OpenVINO let it go."""
        if self.network is None:
            state = read_state_dict(self.loaded.weights_path)
            self.network = self._placed(self.architecture.build(self.card, state))
        return self.network

    def predict(
        self,
        images: np.ndarray,
        extras: ExtraInputs | None = None,
        confidence: bool = False,
        probabilities: bool = False,
    ) -> PredictionBatch:
        """FLAIR codes (and optionally confidence and probabilities) for a batch of tiles."""
        with torch.inference_mode():
            logits = self.logits(images, extras).add_(self._logit_bias)  # in place: no 2nd copy
            if logits.device.type == "cpu":
                # numpy's argmax over the logit axis takes 0.14 s for a 1280 px tile of 19
                # logits where torch's takes 0.35 s (15 % of an OpenVINO tile); both return
                # the first maximum, so the codes are the same
                codes = self._code_lut[logits.numpy().argmax(axis=1)]
            else:
                codes = self._code_of_logit[logits.argmax(dim=1)].cpu().numpy()
            conf = probs = None
            if confidence or probabilities:
                p = torch.softmax(logits, dim=1)
                if confidence:
                    conf = _to_percent(p.max(dim=1).values)
                if probabilities:
                    planes = [p[:, idx].sum(dim=1) for idx in self._logits_of_code]
                    probs = _to_percent(torch.stack(planes, dim=1))
        return PredictionBatch(codes=codes, confidence=conf, probabilities=probs)

    def _autocast(self):
        if self.choice.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.choice.autocast_dtype)


class RunSettings(Protocol):
    """What `runtime_of` reads of a run's settings (`engine.settings.PredictSettings`)."""

    device: str
    threads: int | None
    precision: str
    backend: str | None


def runtime_of(
    loaded: LoadedModel, settings: RunSettings, shape: tuple[int, int], reporter: Reporter
) -> RuntimeChoice:
    """The runtime tiles of `shape` would run in with these settings, without keeping a
    predictor: a region's coordinator asks it once, so that a conversion happens there (and
    its workers load it from the cache). Where OpenVINO runs, `loaded`'s network is let go as
    in any predictor (its weights freed): the caller does not run it afterwards."""
    device = choose_device(settings.device, settings.precision)
    planned = plan_runtime(
        settings.backend,
        str(device.device) if device.is_cuda else "cpu",
        device.precision,
        not loaded.architecture.uses_sentinel2,
        read_cpu_features(),
        openvino_version(),
    )
    if planned.runtime == "torch":  # nothing to convert: the device choice says it all
        return planned
    predictor = Predictor(
        loaded, settings.device, settings.threads, settings.precision, settings.backend
    )
    return predictor.runtime_for(shape, reporter)


def _to_percent(p: torch.Tensor) -> np.ndarray:
    """Probabilities as whole percents (0-100 in uint8): what a map reader expects to see."""
    return (p * 100.0).round_().clamp_(0, 100).to(torch.uint8).cpu().numpy()
