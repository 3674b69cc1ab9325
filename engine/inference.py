"""Running a loaded model on batches of raw tiles and turning logits into FLAIR codes.

Where OpenVINO runs the network (a CPU run whose converted network is cached), everything here
is numpy: normalisation, the inactive-logit mask, argmax, confidence and probabilities. torch is
imported only for a torch network (or a conversion), so such a run never loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.device import DeviceChoice, choose_device
from engine.models.architectures import Architecture, ExtraInputs
from engine.models.card import ModelCard
from engine.models.loader import LoadedModel
from engine.progress import Reporter
from engine.runtime.choice import RuntimeChoice, plan_runtime
from engine.runtime.cpu_features import read_cpu_features
from engine.runtime.network import NetworkSource, RuntimeNetwork, network_for, openvino_version

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PredictionBatch:
    """Per-pixel results of one batch, all (B, H, W) except `probabilities` (B, K, H, W)."""

    codes: np.ndarray  # uint8 FLAIR codes, never an inactive code
    confidence: np.ndarray | None = None  # uint8, top softmax probability in percent
    probabilities: np.ndarray | None = None  # uint8 percent, one plane per active code


class _TorchConstants:
    """The predictor's constants as tensors on its device, made when torch first runs."""

    def __init__(self, predictor: Predictor) -> None:
        import torch

        dev = predictor.choice.torch_device
        self.mean = torch.from_numpy(predictor._mean).to(dev)
        self.std = torch.from_numpy(predictor._std).to(dev)
        self.logit_bias = torch.from_numpy(predictor._logit_bias).to(dev)
        self.code_of_logit = torch.from_numpy(predictor._code_lut).to(dev)


class Predictor:
    """A model on a device, ready to map raw band values to FLAIR codes.

    Inputs are raw band values in the card's channel order (0..255 scale); normalisation,
    masking of inactive logits and the logit-to-code mapping happen here, so every caller
    (predict, evaluate, tests) gets the same numbers.

    The network itself comes from the runtime layer (`engine.runtime`), asked once per tile
    shape: torch, or an OpenVINO network checked against torch. Once OpenVINO runs, the torch
    network is let go (it is rebuilt from the checkpoint only if another shape needs it); a
    model loaded without its network (`LoadedModel.network` None) builds it only if asked.
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
        self.loaded = loaded  # kept so a cached predictor can stand in for a fresh load
        self.card: ModelCard = loaded.card
        self.architecture: Architecture = loaded.architecture
        self.choice: DeviceChoice = choose_device(device, precision)
        self.backend = backend  # None: $FLAIR_BACKEND, else auto (engine.runtime.choice)
        self.threads = threads
        self.reporter = reporter or Reporter()
        self._runtimes: dict[tuple[int, int], RuntimeNetwork] = {}
        self._constants: _TorchConstants | None = None
        self.network: torch.nn.Module | None = None
        if loaded.network is not None:
            self.network = self._placed(loaded.network)
        card = self.card
        n = len(card.channels)
        norm = card.normalization
        self._divisor = float(norm.divisor)
        self._mean = np.array(norm.mean or (0.0,) * n, np.float32).reshape(1, n, 1, 1)
        self._std = np.array(norm.std or (1.0,) * n, np.float32).reshape(1, n, 1, 1)
        bias = np.zeros(card.num_logits, np.float32)
        bias[[i for i, c in enumerate(card.logit_codes) if c in card.inactive_codes]] = -np.inf
        self._logit_bias = bias.reshape(1, -1, 1, 1)
        self.active_codes = card.active_codes
        self._code_lut = np.array(card.logit_codes, np.uint8)  # logit index -> FLAIR code
        # logits that share one code (e.g. "other") are summed into that code's probability
        self._logits_of_code = [
            [i for i, c in enumerate(card.logit_codes) if c == code] for code in self.active_codes
        ]

    @property
    def device(self) -> torch.device:
        return self.choice.torch_device

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
                self.loaded.weights_sha256,
                self.loaded.weights_path,
                self._release_torch,
            )
            runtime = network_for(
                source,
                self.choice.device,
                self.choice.precision,
                shape,
                self.backend,
                self.threads,
                self.normalized_array,
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

    def normalized_array(self, images: np.ndarray) -> np.ndarray:
        """(B, C, H, W) raw values -> the network's normalised float32 input, NCHW (numpy; the
        same float32 operations, in the same order, as the torch path on a GPU)."""
        x = np.asarray(images).astype(np.float32)
        if self._divisor != 1.0:
            x /= np.float32(self._divisor)
        x -= self._mean
        x /= self._std
        return x

    def normalize(self, images: np.ndarray, channels_last: bool = True) -> torch.Tensor:
        """(B, C, H, W) raw values -> normalised float32 tensor on the device (channels-last
        by default, what torch's convolutions run fastest on)."""
        import torch

        if self.choice.is_cuda:  # normalised on the GPU, from the raw values sent there
            constants = self._torch_constants()
            x = torch.from_numpy(np.ascontiguousarray(images)).pin_memory()
            x = x.to(self.choice.device, non_blocking=True).to(torch.float32)
            if self._divisor != 1.0:
                x = x / self._divisor
            x = (x - constants.mean) / constants.std
        else:
            x = torch.from_numpy(self.normalized_array(images))
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    def logits(self, images: np.ndarray, extras: ExtraInputs | None = None) -> np.ndarray:
        """Raw float32 logits (B, K, H, W) on the host, inactive logits still present."""
        raw = self._raw_logits(images, extras)
        return raw if isinstance(raw, np.ndarray) else raw.cpu().numpy()

    def _raw_logits(self, images: np.ndarray, extras: ExtraInputs | None) -> Any:
        """Logits where the runtime leaves them: a numpy array (OpenVINO) or a float32 tensor
        on the device (torch)."""
        shape = (int(images.shape[-2]), int(images.shape[-1]))
        self.runtime_for(shape)
        runtime = self._runtimes[shape]
        if runtime.forward is not None:
            return runtime.forward(self.normalized_array(images))
        import torch

        x = self.normalize(images)
        with torch.inference_mode(), self._autocast():
            out = self.architecture.forward(self._torch(), x, extras)
        return out.float()

    def _placed(self, network: torch.nn.Module) -> torch.nn.Module:
        """The network on the device, in eval mode and channels-last (torch's threads set)."""
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        network = network.to(self.choice.device).eval()
        return network.to(memory_format=torch.channels_last)

    def _torch(self) -> torch.nn.Module:
        """The torch network, built from the checkpoint if it was not loaded or was let go."""
        if self.network is None:
            from engine.models.loader import build_network

            self.network = self._placed(build_network(self.loaded))
        return self.network

    def _torch_constants(self) -> _TorchConstants:
        if self._constants is None:
            self._constants = _TorchConstants(self)
        return self._constants

    def predict(
        self,
        images: np.ndarray,
        extras: ExtraInputs | None = None,
        confidence: bool = False,
        probabilities: bool = False,
    ) -> PredictionBatch:
        """FLAIR codes (and optionally confidence and probabilities) for a batch of tiles."""
        raw = self._raw_logits(images, extras)
        if isinstance(raw, np.ndarray):
            return self._from_array(raw, confidence, probabilities)
        return self._from_tensor(raw, confidence, probabilities)

    def _from_array(
        self, logits: np.ndarray, confidence: bool, probabilities: bool
    ) -> PredictionBatch:
        """The batch's results from host logits (OpenVINO), in numpy."""
        logits += self._logit_bias  # in place: no second copy of a batch's logits
        codes = self._code_lut[logits.argmax(axis=1)]
        conf = probs = None
        if confidence or probabilities:
            p = logits - logits.max(axis=1, keepdims=True)  # softmax, as torch computes it
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)
            if confidence:
                conf = _array_percent(p.max(axis=1))
            if probabilities:
                planes = [p[:, idx].sum(axis=1) for idx in self._logits_of_code]
                probs = _array_percent(np.stack(planes, axis=1))
        return PredictionBatch(codes=codes, confidence=conf, probabilities=probs)

    def _from_tensor(
        self, logits: torch.Tensor, confidence: bool, probabilities: bool
    ) -> PredictionBatch:
        """The batch's results from torch's logits, on their device."""
        import torch

        constants = self._torch_constants()
        with torch.inference_mode():
            logits = logits.add_(constants.logit_bias)  # in place: no second copy
            if logits.device.type == "cpu":
                # numpy's argmax over the logit axis takes 0.14 s for a 1280 px tile of 19
                # logits where torch's takes 0.35 s; both return the first maximum, so the
                # codes are the same
                codes = self._code_lut[logits.numpy().argmax(axis=1)]
            else:
                codes = constants.code_of_logit[logits.argmax(dim=1)].cpu().numpy()
            conf = probs = None
            if confidence or probabilities:
                p = torch.softmax(logits, dim=1)
                if confidence:
                    conf = _tensor_percent(p.max(dim=1).values)
                if probabilities:
                    planes = [p[:, idx].sum(dim=1) for idx in self._logits_of_code]
                    probs = _tensor_percent(torch.stack(planes, dim=1))
        return PredictionBatch(codes=codes, confidence=conf, probabilities=probs)

    def _autocast(self):
        import torch

        device_type = self.choice.torch_device.type
        if self.choice.autocast_dtype is None:
            return torch.autocast(device_type, enabled=False)
        return torch.autocast(device_type, dtype=self.choice.autocast_dtype)


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
        device.device,
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


def _tensor_percent(p: torch.Tensor) -> np.ndarray:
    """Probabilities as whole percents (0-100 in uint8): what a map reader expects to see."""
    import torch

    return (p * 100.0).round_().clamp_(0, 100).to(torch.uint8).cpu().numpy()


def _array_percent(p: np.ndarray) -> np.ndarray:
    """`_tensor_percent` for a numpy array (rounded half to even, as torch rounds)."""
    p = p * np.float32(100.0)
    return np.clip(np.round(p, out=p), 0, 100).astype(np.uint8)
