"""Reading torch checkpoints and writing MindSpore ones. torch and MindSpore are imported here,
lazily, and only by the functions that need them."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

from ..ruleset import Layout

INSTALL_HINT = "pip install 'torch2ms[verify]' (PyTorch 2.13 CPU, MindSpore 2.10, numpy<2)"
# Where a training script usually keeps the state dict inside a larger checkpoint dict.
WRAPPER_KEYS = ("state_dict", "model")


class CkptError(Exception):
    """The conversion cannot go on; the message says why, for the user."""


def import_torch():
    try:
        import torch
    except ImportError as exc:
        raise CkptError(f"convert-ckpt needs PyTorch to read the checkpoint ({exc}): {INSTALL_HINT}") from None
    return torch


def import_mindspore():
    # MindSpore logs each parameter load_param_into_net leaves alone; the report says it better.
    # GLOG_v is read when MindSpore is first imported: 3 = errors only. The user's setting wins.
    os.environ.setdefault("GLOG_v", "3")
    try:
        import mindspore
    except ImportError as exc:
        raise CkptError(f"convert-ckpt needs MindSpore to write the checkpoint ({exc}): {INSTALL_HINT}") from None
    return mindspore


def load_state_dict(path: Path) -> tuple[dict[str, Any], str]:
    """The state dict in a torch checkpoint file, and where it was found in it. Loaded with
    ``weights_only=True``: tensors and plain containers only, never code."""
    torch = import_torch()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not the user's business
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise CkptError(f"cannot read {path}: {exc.strerror}") from None
    except OSError as exc:
        raise CkptError(f"cannot read {path}: {exc}") from None
    except Exception as exc:  # torch raises anything from UnpicklingError to KeyError on foreign bytes
        message = str(exc)
        if "Unsupported global" in message:
            raise CkptError(f"{path} holds pickled Python objects (a whole model saved with torch.save(model)?): "
                            "loading it would run code. Save model.state_dict() instead and convert that") from None
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        raise CkptError(f"{path} is not a PyTorch checkpoint that can be loaded without running code "
                        f"({type(exc).__name__}: {first[:200]})") from None
    return find_state_dict(loaded, torch.Tensor, str(path))


def find_state_dict(loaded: Any, tensor_type: type, display: str) -> tuple[dict[str, Any], str]:
    if _is_state_dict(loaded, tensor_type):
        return dict(loaded), "a bare state dict"
    if isinstance(loaded, Mapping):
        for key in WRAPPER_KEYS:
            inner = loaded.get(key)
            if _is_state_dict(inner, tensor_type):
                return dict(inner), f"the state dict under {key!r}"
        keys = ", ".join(repr(k) for k in list(loaded)[:8]) + (", ..." if len(loaded) > 8 else "")
        raise CkptError(f"{display} is not a state dict: a dict with keys {keys or '(none)'}, expected tensors "
                        f"by name, or a state dict under {' or '.join(repr(k) for k in WRAPPER_KEYS)}")
    raise CkptError(f"{display} is not a state dict: it holds a {type(loaded).__name__}")


def _is_state_dict(value: Any, tensor_type: type) -> bool:
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, tensor_type) for k, v in value.items()))


def to_mindspore(tensor, layout: Layout | None = None) -> Any:
    """A MindSpore tensor with the same values and dtype, laid out as ``layout`` says (the rules'
    layout of the parameter it is for: Conv1d's weight gets an axis)."""
    ms = import_mindspore()
    torch = import_torch()
    if tensor.is_sparse or tensor.is_quantized:
        raise CkptError("sparse and quantized tensors cannot be written to a MindSpore checkpoint")
    tensor = tensor.detach().cpu()
    if layout is not None:
        tensor = tensor.unsqueeze(layout.insert_axis)
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds every bfloat16 exactly
        return ms.Tensor(tensor.float().numpy(), ms.bfloat16)
    return ms.Tensor(tensor.numpy())


def write_checkpoint(entries: list[tuple[str, Any, Layout | None]], directory: Path) -> Path:
    """Write ``(name, torch tensor, layout)`` triples to a new temporary .ckpt in ``directory`` (the
    caller renames it into place once everything else succeeded)."""
    ms = import_mindspore()
    items = []
    for name, tensor, layout in entries:
        try:
            items.append({"name": name, "data": to_mindspore(tensor, layout)})
        except CkptError as exc:
            raise CkptError(f"{name}: {exc}") from None
    fd, tmp = tempfile.mkstemp(prefix=".torch2ms-", suffix=".ckpt", dir=directory)
    os.close(fd)
    try:
        ms.save_checkpoint(items, tmp)
        # MindSpore leaves its checkpoints read-only for the owner (0400); the user's checkpoint
        # gets the mode of any new file of theirs.
        os.chmod(tmp, 0o666 & ~_umask())
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        os.unlink(tmp)
        raise CkptError(f"cannot write the checkpoint in {directory}: {exc}") from None
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set back at once
    os.umask(mask)
    return mask
