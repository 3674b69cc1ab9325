"""Reading checkpoint files as they are published, with no conversion step.

Handles plain state dicts (FLAIR-INC `*_weights.pth`, smp's own), Lightning `.ckpt` files
(`state_dict` inside, `criterion.*` loss buffers ignored) and refuses, with one message, files
that are missing, truncated or not torch files at all, and files holding Python objects other
than tensors (the safe unpickler never runs them).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import InputNotFound, ModelError
from engine.failures import read_failure

if TYPE_CHECKING:  # imported where tensors are read: a cached OpenVINO run never needs it
    import torch

IGNORED_PREFIXES = ("criterion.",)
KNOWN_WRAPPER_PREFIXES = ("model.seg_model.", "seg_model.", "model.", "module.", "net.")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The network tensors of a checkpoint file, on the CPU, loss buffers dropped.

    Only tensors and plain containers are unpickled (`weights_only=True`): a checkpoint is data,
    never code.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise ModelError(f"checkpoint {path} is empty (an interrupted download?); fetch it again")
    safetensors = path.suffix == ".safetensors"
    payload = _read_safetensors(path) if safetensors else _read_torch(path)
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


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A `.safetensors` file (FLAIR-HUB): tensors only by construction, nothing to unpickle."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except SafetensorError as exc:
        raise _unreadable(path, exc) from exc
    except OSError as exc:
        raise read_failure(exc, path) from exc


def _read_torch(path: Path) -> object:
    """A torch file, unpickling tensors and plain containers only."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(exc)
        if refused is not None:
            raise ModelError(
                f"checkpoint {path} holds objects other than tensors ({refused}) and was "
                "refused for safety: these are Python objects, whose loading could run code, "
                "and nothing in it was run. If you trust its source, convert it once to tensors "
                f"alone and give that file: in Python, state = torch.load('{path}', "
                "weights_only=False) (of a Lightning .ckpt, its ['state_dict']), then "
                "safetensors.torch.save_file(state, 'weights.safetensors')"
            ) from None
        raise _unreadable(path, exc) from exc
    except (
        EOFError,
        RuntimeError,
        zipfile.BadZipFile,
        ValueError,
        IndexError,
        KeyError,
    ) as exc:  # torch raises any of these on foreign bytes
        raise _unreadable(path, exc) from exc
    except OSError as exc:
        raise read_failure(exc, path) from exc


# torch's safe unpickler refusing a Python object, in each of its wordings; anything else it
# raises (`Unsupported operand 158`) means bytes that are not a pickle: a damaged file
_REFUSALS = re.compile(
    r"Unsupported global: GLOBAL (?P<allowed>[\w.]+)"  # a class not allowlisted
    r"|unsupported GLOBAL (?P<blocked>[\w.]+) whose module"  # os.system and the like
    r"|(?P<named>[\w.]+) was not an allowed global"
    r"|reduce for unrecognized function (?P<function>\S+)"
    r"|allowlisted via `add_safe_globals`,? but got <class '(?P<built>[\w.]+)'>"
)


def _refused_global(exc: pickle.UnpicklingError) -> str | None:
    """What the safe unpickler refused to build (`io.open`, `argparse.Namespace`,
    `posix.system`), or None when the error is not such a refusal (a truncated or foreign
    file)."""
    found = _REFUSALS.search(str(exc))
    return next(v for v in found.groupdict().values() if v) if found else None


def _unreadable(path: Path, exc: BaseException) -> ModelError:
    text = str(exc).strip()
    inner = re.search(r"WeightsUnpickler error:\s*(.+)", text)  # torch's real reason
    first = inner.group(1).strip() if inner else (text.splitlines()[0] if text else "")
    return ModelError(
        f"{path} is not a readable torch checkpoint (truncated or another kind of file: "
        f"{(first or type(exc).__name__)[:160]}); nothing in it was run; download it again or "
        "check the path"
    )


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


_LISTED_KEYS = 6  # keys named in a mismatch message before "and N more"


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED_KEYS])
    extra = len(items) - _LISTED_KEYS
    return shown + (f" and {extra} more" if extra > 0 else "")


def describe_state_mismatch(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, object]
) -> str:
    """How a checkpoint's tensors (`found`) differ from a network's own (`expected`).

    Returns:
        "" when every key is there with its shape; otherwise one line for an error message:
        the missing keys, the unexpected keys and the shape mismatches (or entries that are not
        tensors), each counted with the first few named.
    """
    import torch

    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = []
    for key, ref in expected.items():
        if key not in found:
            continue
        value = found[key]
        if not isinstance(value, torch.Tensor):
            wrong.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif tuple(value.shape) != tuple(ref.shape):
            wrong.append(f"{key} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_listed(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches ({len(wrong)}): {_listed(wrong)}")
    return "; ".join(problems)
