"""neuraloperator ``.pt`` data files: input/output pairs saved with ``torch.save``.

The datasets distributed with the ``neuraloperator`` library (``nsforcing_train_128.pt``,
``darcy_train_16.pt``, ...; Kossaifi et al., "A Library for Learning Neural Operators", 2024) are a
``torch.save`` of a dict ``{"x": Tensor (N, *spatial), "y": Tensor (N, *spatial)}`` with no channel axis.
Darcy's ``x`` is ``bool``; tensors may be non-contiguous views (the whole storage is saved).

Files are loaded with ``torch.load(weights_only=True, mmap=True)``: only tensors and plain containers are
accepted (no pickled code is ever run), and the tensor storages are memory-mapped, so memory stays bounded
by what is read. A file in the legacy (pre-1.6, non-zip) serialization cannot be memory-mapped; it is then
loaded into memory in full (logged). Each sample is copied out of the mapping, so the samples handed out
never alias the file's pages.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from sciml.datasets.base import PairDataset, describe_error
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.readers._layout import per_axis_flags, per_axis_floats
from sciml.datasets.registry import register_reader
from sciml.datasets.remote import suffix_of
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
#: ``pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)``: the magic number opening a legacy ``torch.save``.
LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."
_SPATIAL = ("x", "y", "z")


@register_reader
class NeuralopPtReader(PairDataset):
    """Input/output pairs from a neuraloperator ``.pt`` file (``{"x": (N, ...), "y": (N, ...)}``).

    ``metadata`` describes ``x`` and ``output_metadata`` describes ``y``; both have ``n_times = 1``,
    spatial dims ``("x",)``, ``("x", "y")`` or ``("x", "y", "z")``, and coordinates
    ``x_i = i * L / n`` (neuraloperator's regular-grid embedding on ``[0, L)``).

    Args:
        path: the ``.pt``/``.pth`` file.
        x_key: dict key of the inputs.
        y_key: dict key of the outputs.
        channel_dim: axis of the tensors that holds channels (e.g. ``1`` for ``(N, C, X, Y)``, ``-1`` for
            ``(N, X, Y, C)``); ``None`` (default, neuraloperator's layout): no channel axis, one channel.
            Applies to both tensors.
        input_names: channel names of ``x`` (default ``("x",)``, or ``("x0", "x1", ...)``).
        output_names: channel names of ``y`` (default ``("y",)``, or ``("y0", "y1", ...)``).
        domain_lengths: box length per spatial axis (one value for all); default 1.0 (the unit square).
        periodic: periodicity per spatial axis (one bool for all); default ``False`` (the file does not
            say; neuraloperator's Navier-Stokes sets are periodic, Darcy is not).
        viscosity: kinematic viscosity to record in the metadata.
    """

    format_name = "neuralop_pt"
    suffixes = (".pt", ".pth")

    @classmethod
    def sniff(cls, path: Path | str, header: bytes) -> bool:
        """A ``.pt``/``.pth`` file that is a zip archive (``torch.save``) or a legacy torch pickle."""
        if suffix_of(path) not in cls.suffixes:
            return False
        return header.startswith(ZIP_MAGIC) or header.startswith(LEGACY_MAGIC)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        x_key: str = "x",
        y_key: str = "y",
        channel_dim: int | None = None,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        domain_lengths: float | Sequence[float] = 1.0,
        periodic: bool | Sequence[bool] = False,
        viscosity: float | None = None,
    ) -> None:
        super().__init__(path)
        self._keys = (x_key, y_key)
        self._channel_dim = channel_dim
        self._mmap = True
        tensors = self.handle()
        p = self.path
        x, y = tensors[x_key], tensors[y_key]
        self.metadata = self._describe(x, x_key, input_names, "x", domain_lengths, periodic, viscosity)
        self.output_metadata = self._describe(
            y, y_key, output_names, "y", domain_lengths, periodic, viscosity
        )
        if x.shape[0] != y.shape[0]:
            raise DataFormatError(
                p,
                f"{x_key!r} and {y_key!r} hold different numbers of samples",
                key=y_key,
                expected=f"N = {x.shape[0]} (from {x_key!r}, shape {tuple(x.shape)})",
                found=f"shape {tuple(y.shape)}",
            )
        logger.debug("opened %s as %s (memory-mapped: %s)", p, self, self._mmap)

    # ------------------------------------------------------------------------------------------------------
    def _open_handle(self) -> dict[str, torch.Tensor]:
        """Load the file (memory-mapped) and check it is a dict holding the two tensors."""
        p = self.path
        try:
            try:
                obj = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as err:
                if "mmap" not in str(err):
                    raise
                logger.warning("%s: legacy torch.save format cannot be memory-mapped; loading it in full", p)
                self._mmap = False
                obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            refused = _refused_object(err)
            if refused is None:
                raise DataFormatError(
                    p, f"cannot load ({describe_error(err)}); is the file truncated?"
                ) from err
            raise DataFormatError(
                p,
                "holds pickled Python objects; only a dict of tensors is accepted (nothing in it was run)",
                expected="{'x': Tensor, 'y': Tensor}",
                found=refused,
            ) from err
        except (RuntimeError, OSError, EOFError, ValueError) as err:
            raise DataFormatError(p, f"cannot load ({describe_error(err)}); is the file truncated?") from err
        if not isinstance(obj, Mapping):
            raise DataFormatError(
                p,
                "not a dict",
                expected="a dict {'x': Tensor, 'y': Tensor}",
                found=type(obj).__name__,
            )
        found_keys = [repr(k) for k in obj]
        out: dict[str, torch.Tensor] = {}
        for key in self._keys:
            if key not in obj:
                raise DataFormatError(
                    p,
                    "missing key",
                    key=key,
                    expected=f"keys {list(self._keys)}",
                    found=f"keys [{', '.join(found_keys)}]",
                )
            value = obj[key]
            if not isinstance(value, torch.Tensor):
                raise DataFormatError(
                    p, "not a tensor", key=key, expected="a Tensor", found=type(value).__name__
                )
            if value.dtype.is_complex:
                raise DataFormatError(p, "complex tensors are not supported", key=key, found=str(value.dtype))
            out[key] = value
        return out

    def _layout(self, tensor: torch.Tensor, key: str) -> tuple[int, tuple[int, ...]]:
        """Channels and grid of ``(N, *spatial)``, or ``(N, C, *spatial)`` given ``channel_dim``."""
        shape = tuple(int(s) for s in tensor.shape)
        n_channel_axes = 0 if self._channel_dim is None else 1
        if not 2 + n_channel_axes <= len(shape) <= 4 + n_channel_axes:
            layout = (
                "(N, *spatial)" if self._channel_dim is None else f"(N, ..., C at axis {self._channel_dim})"
            )
            raise DataFormatError(
                self.path,
                "wrong number of dimensions",
                key=key,
                expected=f"{2 + n_channel_axes} to {4 + n_channel_axes} axes {layout}, 1 to 3 spatial",
                found=f"shape {shape}",
            )
        if self._channel_dim is None:
            return 1, shape[1:]
        axis = self._channel_dim % len(shape)
        if axis == 0:
            raise DataFormatError(
                self.path, "option channel_dim= points at the sample axis", key=key, found=self._channel_dim
            )
        grid = tuple(s for k, s in enumerate(shape) if k not in (0, axis))
        return shape[axis], grid

    def _describe(
        self,
        tensor: torch.Tensor,
        key: str,
        names: Sequence[str] | None,
        default: str,
        domain_lengths: float | Sequence[float],
        periodic: bool | Sequence[bool],
        viscosity: float | None,
    ) -> DatasetMetadata:
        n_c, grid = self._layout(tensor, key)
        d = len(grid)
        if names is None:
            names = (default,) if n_c == 1 else tuple(f"{default}{c}" for c in range(n_c))
        names = tuple(str(s) for s in ([names] if isinstance(names, str) else names))
        if len(names) != n_c:
            raise DataFormatError(
                self.path, "wrong number of channel names", key=key, expected=n_c, found=list(names)
            )
        lengths = per_axis_floats(domain_lengths, d, option="domain_lengths", path=self.path)
        per = per_axis_flags(periodic, d, option="periodic", path=self.path)
        dims = _SPATIAL[:d]
        return DatasetMetadata(
            path=self.path,
            format=self.format_name,
            field_names=names,
            spatial_dims=dims,
            grid_shape=grid,
            n_trajectories=int(tensor.shape[0]),
            n_times=1,
            coords={
                a: np.arange(n, dtype=np.float64) * L / n for a, n, L in zip(dims, grid, lengths, strict=True)
            },
            times=None,
            periodic=per,
            domain_lengths=lengths,
            viscosity=viscosity,
            parameters={"key": key, "dtype": str(tensor.dtype).removeprefix("torch.")},
        )

    def _sample(self, key: str, index: int) -> np.ndarray:
        """Sample ``index`` of tensor ``key`` as a fresh array ``[C, *grid]``."""
        t = self.handle()[key][index]
        if self._channel_dim is None:
            t = t.unsqueeze(0)
        else:
            axis = self._channel_dim % (t.dim() + 1)
            t = t.movedim(axis - 1, 0)
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16
            t = t.float()
        return t.numpy().copy()

    def _read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._sample(self._keys[0], index), self._sample(self._keys[1], index)


def _refused_object(err: Exception) -> str | None:
    """What torch's weights-only unpickler refused (``"the global numpy.dtype"``), in a few words;
    ``None`` when ``err`` is no such refusal (e.g. a truncated pickle)."""
    text = str(err)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return f"the global {found.group(1)[:100]}"
    found = re.search(r"WeightsUnpickler error: (Unsupported [^.\n]{1,100})", text)
    return found.group(1).strip() if found else None
