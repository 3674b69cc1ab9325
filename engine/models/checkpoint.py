"""Reading checkpoint files as they are published, with no conversion step.

Handles plain state dicts (FLAIR-INC `*_weights.pth`, smp's own), Lightning `.ckpt` files
(`state_dict` inside, `criterion.*` loss buffers ignored) and refuses, with one message, files
that are missing, truncated or not torch files at all.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from engine.errors import InputNotFound, ModelError

IGNORED_PREFIXES = ("criterion.",)
KNOWN_WRAPPER_PREFIXES = ("model.seg_model.", "seg_model.", "model.", "module.", "net.")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The network tensors of a checkpoint file, on the CPU, loss buffers dropped.

    Only tensors and plain containers are unpickled (`weights_only=True`): a checkpoint is data,
    never code.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise ModelError(f"checkpoint {path} is empty (an interrupted download?); fetch it again")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        EOFError,
        RuntimeError,
        zipfile.BadZipFile,
        ValueError,
        IndexError,
        KeyError,
    ) as exc:  # noqa: E501 torch raises any of these on foreign bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path} is not a readable torch checkpoint (truncated or another kind of file: "
            f"{first[:160]}); download it again or check the path"
        ) from exc
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping):
        raise ModelError(f"{path} holds a {type(payload).__name__}, not a state dict")
    state = {
        k: v
        for k, v in payload.items()
        if isinstance(v, torch.Tensor) and not k.startswith(IGNORED_PREFIXES)
    }
    if not state:
        raise ModelError(f"{path} holds no network tensors")
    return state


def strip_wrapper_prefix(state: Mapping[str, torch.Tensor], anchor: str) -> dict[str, torch.Tensor]:
    """Remove the training wrapper's key prefix so that the key `anchor` appears unprefixed.

    FLAIR checkpoints nest the network as `model.seg_model.` (Lightning module, model factory,
    smp model); others use `model.` or `module.`. The prefix is found, not assumed.
    """
    if anchor in state:
        return dict(state)
    for prefix in KNOWN_WRAPPER_PREFIXES:
        if prefix + anchor in state:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    for key in state:
        if key.endswith("." + anchor):
            prefix = key[: -len(anchor)]
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    raise ModelError(
        f"the checkpoint has no {anchor!r} tensor under any known prefix; it is not a network "
        "of the expected architecture"
    )
