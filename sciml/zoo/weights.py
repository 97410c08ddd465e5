"""The weights file of a pretrained folder: safetensors, optionally in half precision, complex ones included.

safetensors has no complex half-precision dtype. A model stored with ``weights_dtype`` ``float16`` or
``bfloat16`` therefore keeps its complex tensors (the spectral weights of FNO-type models, most of their
parameters) as their real view, ``torch.view_as_real(w)`` of shape ``[..., 2]`` (real and imaginary parts)
in the storage dtype, and names them in the file's metadata under :data:`COMPLEX_KEY` (a JSON list).
:func:`read_weights` turns them back into complex64 (``view_as_complex`` of the float32 parts), so the loaded
model computes in its own precision with the rounded weights. Files without the marker (float32 entries, and
half-precision entries written before complex tensors were rounded) keep their complex64 tensors as they are.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from sciml.errors import ConfigError, DataFormatError

STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
"""``weights_dtype`` names -> the storage dtype of real tensors (and of the parts of complex ones)."""

COMPLEX_KEY = "sciml_complex_as_real"
"""Metadata key of the weights file: JSON list of the tensors stored as the real view of a complex one."""


def storage_dtype(name: str) -> torch.dtype:
    """The torch dtype of a ``weights_dtype`` name, or a :class:`ConfigError` naming the choices."""
    if name not in STORAGE_DTYPES:
        raise ConfigError(f"weights_dtype: {name!r} is not one of {', '.join(STORAGE_DTYPES)}")
    return STORAGE_DTYPES[name]


def _rounded(tensor: torch.Tensor, storage: torch.dtype) -> torch.Tensor:
    """``tensor`` as stored in ``storage``: real floating-point tensors cast, complex ones as their real view
    cast (only for a half-precision ``storage``), anything else unchanged."""
    if tensor.is_complex() and storage != torch.float32:
        return torch.view_as_real(tensor).to(storage)
    if tensor.is_floating_point() and tensor.dtype != storage:
        return tensor.to(storage)
    return tensor


def round_weights(model: nn.Module, weights_dtype: str) -> None:
    """Round ``model``'s floating-point and complex parameters and buffers in place through ``weights_dtype``.

    The model then computes what it will compute after saving in ``weights_dtype`` and loading, so the error
    change of half-precision storage can be measured before writing.
    """
    storage = storage_dtype(weights_dtype)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if not torch.is_tensor(tensor):
                continue
            if tensor.is_complex() and storage != torch.float32:
                tensor.copy_(torch.view_as_complex(_rounded(tensor, storage).to(torch.float32).contiguous()))
            elif tensor.is_floating_point():
                tensor.copy_(tensor.to(storage))


def write_weights(model: nn.Module, path: Path, weights_dtype: str, metadata: dict[str, str]) -> None:
    """Write ``model``'s parameters and buffers to the safetensors file ``path`` in ``weights_dtype``.

    ``metadata`` goes into the file's header, with :data:`COMPLEX_KEY` added when complex tensors are stored
    as their real view.
    """
    storage = storage_dtype(weights_dtype)
    state: dict[str, torch.Tensor] = {}
    as_real: list[str] = []
    for key, value in model.state_dict().items():
        if not torch.is_tensor(value):
            continue
        tensor = value.detach().cpu()
        if tensor.is_complex() and storage != torch.float32:
            as_real.append(key)
        state[key] = _rounded(tensor, storage).contiguous().clone()
    header = dict(metadata)
    if as_real:
        header[COMPLEX_KEY] = json.dumps(as_real)
    save_file(state, str(path), metadata=header)


def _complex_names(path: Path, header: dict[str, str]) -> list[str]:
    """The tensors that :data:`COMPLEX_KEY` names in the file's ``header`` (``[]`` without the key)."""
    text = header.get(COMPLEX_KEY)
    if text is None:
        return []
    try:
        names = json.loads(text)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataFormatError(
            path,
            "malformed metadata",
            key=f"__metadata__.{COMPLEX_KEY}",
            expected="a JSON list of tensor names",
            found=text[:80],
        )
    return names


def read_weights(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, complex ones stored as their real view made complex64.

    A malformed :data:`COMPLEX_KEY`, or one naming a tensor that is absent or not a real view (floating
    point, last dimension 2), raises one :class:`DataFormatError` naming the file, the key and the tensor.
    """
    try:  # one opening for the header and the tensors
        with safe_open(str(path), "pt", device=str(device)) as handle:
            header = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (a handle, not a dict)
    except (SafetensorError, OSError) as err:
        raise DataFormatError(path, f"not a readable safetensors file ({err})") from None
    names = _complex_names(path, header)
    for name in names:
        tensor = state.get(name)
        if tensor is None or not tensor.is_floating_point() or tensor.ndim == 0 or tensor.shape[-1] != 2:
            found = "absent" if tensor is None else f"{tensor.dtype} of shape {list(tensor.shape)}"
            raise DataFormatError(
                path,
                f"metadata names {name!r} as a complex tensor stored as its real view",
                key=f"__metadata__.{COMPLEX_KEY}",
                expected="a floating-point tensor whose last dimension is 2 (real, imaginary)",
                found=found,
            )
        state[name] = torch.view_as_complex(tensor.to(torch.float32).contiguous())
    return state
