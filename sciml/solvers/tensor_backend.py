"""Where the Chebyshev-Tucker algebra runs: numpy or torch arrays through TensorLy's backend system.

Every builder of :mod:`sciml.solvers.chebyshev_tucker` and :mod:`sciml.solvers.newton_kernel` takes
``backend`` (``"numpy"`` or ``"pytorch"``; ``None`` picks ``"pytorch"`` when an input is a torch tensor),
``dtype`` (float64 by default, or float32) and ``device`` (torch only, e.g. ``"cuda"``);
:func:`resolve_backend` turns them into a :class:`Backend`. Its :meth:`Backend.context` is a scoped,
thread-local ``tl.backend_context`` (never ``tl.set_backend``: the backend is process-global and
neuraloperator sets ``"pytorch"`` at import). torch is imported only when a torch backend or tensor is used.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorly as tl

from sciml.errors import ConfigError

__all__ = ["BACKENDS", "Backend", "backend_of", "dtype_name", "is_torch", "resolve_backend", "to_numpy"]

BACKENDS = ("numpy", "pytorch")


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


@dataclass(frozen=True)
class Backend:
    """Where the algebra runs: TensorLy backend name, dtype (numpy or torch) and torch device."""

    name: str
    dtype: Any
    device: Any = None

    @property
    def eps(self) -> float:
        """Machine epsilon of the dtype."""
        single = str(self.dtype).endswith("float32")
        return float(np.finfo(np.float32 if single else np.float64).eps)

    def context(self) -> Any:
        """The scoped TensorLy backend context to run this backend's algebra in."""
        # scoped and thread-local: the process-wide backend (pytorch under neuraloperator) is left alone
        return tl.backend_context(self.name, local_threadsafe=True)

    def asarray(self, x: Any) -> Any:
        """``x`` (numpy, torch or array-like) as an array of this backend, dtype and device."""
        if self.name == "numpy":
            if is_torch(x):
                x = x.detach().cpu().numpy()
            return np.asarray(x, dtype=self.dtype)
        import torch

        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self.dtype)
        return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)


def to_numpy(x: Any) -> np.ndarray:
    """``x`` as a numpy array (a torch tensor is detached and copied to the CPU)."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def backend_of(x: Any) -> Backend:
    """The backend, dtype and device of an existing array."""
    if is_torch(x):
        return Backend("pytorch", x.dtype, x.device)
    return Backend("numpy", np.asarray(x).dtype)


def dtype_name(dtype: Any) -> str:
    """``"float64"`` or ``"float32"`` from a numpy/torch dtype or a string (``None``: float64)."""
    if dtype is None:
        return "float64"
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
    elif type(dtype).__module__.startswith("torch"):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = repr(dtype)
    if name not in ("float64", "float32"):
        raise ConfigError(f"dtype must be float64 or float32 (numpy, torch or string), got {dtype!r}")
    return name


def resolve_backend(backend: str | None, dtype: Any, device: Any, *inputs: Any) -> Backend:
    """Validated backend choice; ``backend=None`` means "pytorch" if an input is a torch tensor."""
    like = next((x for x in inputs if is_torch(x)), None)
    if backend is None:
        backend = "numpy" if like is None else "pytorch"
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    name = dtype_name(dtype)
    if backend == "numpy":
        if device is not None and str(device) != "cpu":
            raise ConfigError(f"the numpy backend runs on the CPU only, got device={device!r}")
        return Backend("numpy", np.dtype(name))
    import torch

    if device is None:
        dev = like.device if like is not None else torch.device("cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"invalid torch device {device!r}") from exc
    return Backend("pytorch", getattr(torch, name), dev)
