"""Running a loaded model on batches of raw tiles and turning logits into FLAIR codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.device import DeviceChoice, choose_device
from engine.models.architectures import Architecture, ExtraInputs
from engine.models.card import ModelCard
from engine.models.loader import LoadedModel


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
    """

    def __init__(
        self,
        loaded: LoadedModel,
        device: str = "auto",
        threads: int | None = None,
        precision: str = "auto",
    ) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.loaded = loaded  # kept so a cached predictor can stand in for a fresh load
        self.card: ModelCard = loaded.card
        self.architecture: Architecture = loaded.architecture
        self.choice: DeviceChoice = choose_device(device, precision)
        self.network = loaded.network.to(self.choice.device).eval()
        self.network = self.network.to(memory_format=torch.channels_last)
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
        self._code_of_logit = lut.to(dev)
        # logits that share one code (e.g. "other") are summed into that code's probability
        self._logits_of_code = [
            [i for i, c in enumerate(card.logit_codes) if c == code] for code in self.active_codes
        ]

    @property
    def device(self) -> torch.device:
        return self.choice.device

    def normalize(self, images: np.ndarray) -> torch.Tensor:
        """(B, C, H, W) raw values -> normalised float32 tensor on the device, channels-last."""
        x = torch.from_numpy(np.ascontiguousarray(images))
        if self.choice.is_cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.to(torch.float32)
        if self._divisor != 1.0:
            x = x / self._divisor
        x = (x - self._mean) / self._std
        return x.contiguous(memory_format=torch.channels_last)

    def logits(self, images: np.ndarray, extras: ExtraInputs | None = None) -> torch.Tensor:
        """Raw float32 logits (B, K, H, W) on the device, inactive logits still present."""
        x = self.normalize(images)
        with torch.inference_mode(), self._autocast():
            out = self.architecture.forward(self.network, x, extras)
        return out.float()

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
            top = logits.argmax(dim=1)
            codes = self._code_of_logit[top].cpu().numpy()
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


def _to_percent(p: torch.Tensor) -> np.ndarray:
    """Probabilities as whole percents (0-100 in uint8): what a map reader expects to see."""
    return (p * 100.0).round_().clamp_(0, 100).to(torch.uint8).cpu().numpy()
