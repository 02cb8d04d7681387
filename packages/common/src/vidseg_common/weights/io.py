"""Reading a checkpoint file of any of the formats researchers pass around, without running code from it.

``.pth`` / ``.pt`` / ``.bin`` (a bare state_dict, or a dict with a ``model`` / ``state_dict`` / ``module`` entry, as
DETR-family and STCN releases save), Lightning ``.ckpt`` (``state_dict`` + ``hyper_parameters``) and
``.safetensors``. Pickles are always read with ``torch.load(weights_only=True)``: a file that needs code execution
to unpickle is refused, never run.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from vidseg_common.errors import VidSegError

CheckpointKind = Literal["lightning", "state_dict", "safetensors"]
NESTED_KEYS = ("model", "state_dict", "module", "net")
"""Entries under which released ``.pth`` files keep their state_dict (DETR / SeqFormer ``model``, STCN none)."""


class WeightsError(VidSegError, ValueError):
    """A weights file is unreadable, unsafe or does not fit the model. The message names the file and the keys."""


@dataclass
class Checkpoint:
    """A state_dict read from ``path``, with what kind of file it was and the Lightning hyperparameters if any."""

    path: Path
    kind: CheckpointKind
    state_dict: dict[str, torch.Tensor]
    hyper_parameters: dict[str, Any] = field(default_factory=dict)


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(f"{path}: refused, unpickling it needs code execution (not a plain tensor checkpoint): "
                           f"{str(err).splitlines()[0]}") from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise WeightsError(f"{path}: not a readable checkpoint (truncated or corrupt?): {str(err).splitlines()[0]}") from err


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read the state_dict of a weights file (see the module docstring for the formats)."""
    path = Path(os.path.expanduser(path))
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return Checkpoint(path, "safetensors", load_file(str(path), device="cpu"))
        except (SafetensorError, OSError) as err:
            raise WeightsError(f"{path}: not a readable safetensors file: {err}") from err
    data = _torch_load(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict) and "hyper_parameters" in data:
        return Checkpoint(path, "lightning", _tensors(path, data["state_dict"]), dict(data["hyper_parameters"]))
    if isinstance(data, dict):
        for key in NESTED_KEYS:
            if isinstance(data.get(key), dict):
                return Checkpoint(path, "state_dict", _tensors(path, data[key]))
    return Checkpoint(path, "state_dict", _tensors(path, data))


def _tensors(path: Path, state: Any) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not state:
        raise WeightsError(f"{path}: holds no state_dict (got {type(state).__name__})")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{path}: entries that are not tensors: {', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    return dict(state)


def save_state_dict(state_dict: dict[str, torch.Tensor], path: str | os.PathLike[str]) -> Path:
    """Write ``state_dict`` atomically: ``.safetensors`` by safetensors, anything else by ``torch.save``."""
    from vidseg_common.io import atomic_path

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, str(tmp))
        else:
            torch.save(tensors, tmp)
    return path
