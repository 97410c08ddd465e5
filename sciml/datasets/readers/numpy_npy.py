"""Trajectories stored as one NumPy ``.npy`` array, read through a read-only memory map.

The axes of the array are named by a ``layout`` string of single letters:

* ``n``: trajectories (samples); ``t``: time frames; ``c``: channels;
* ``x``, ``y``, ``z``: 1 to 3 spatial axes, in any order.

``t`` and ``c`` may be left out (length 1), and so may ``n`` (a file holding one trajectory). The default
``"ntxyc"`` is ``[N, T, X, Y, C]``. The turbulent channel flow sets of IFactFormer-m (Re_tau 180/395/590,
domain ``(4 pi, 2, 4 pi / 3)``) are ``[b, t, nx, ny, nz, c]``, i.e. ``layout="ntxyzc"``, e.g.
``(21, 400, 32, 33, 16, 4)``.

Frames come out as ``[T_sel, C, *grid]`` with the spatial axes in ``x, y, z`` order whatever their order in
the file; ``spatial_dims`` lists the letters present in that order, and the per-axis options
(``domain_lengths``, ``periodic``, ``coords``) follow it too.
"""

from __future__ import annotations

import logging
import os
import struct
import tokenize
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciml.datasets.base import TrajectoryDataset, describe_error
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.readers._layout import parse_layout, per_axis_flags, per_axis_floats, select_frames
from sciml.datasets.registry import register_reader
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)

NPY_MAGIC = b"\x93NUMPY"
#: Longest ``.npy`` header read (numpy's own default ``max_header_size``).
NPY_MAX_HEADER_BYTES = 10000
_NPY_HEADER_LENGTH_FORMATS = {(1, 0): "<H", (2, 0): "<I", (3, 0): "<I"}


def grid_coords(
    dims: Sequence[str],
    grid: Sequence[int],
    lengths: Sequence[float],
    periodic: Sequence[bool],
    given: Mapping[str, Any] | None,
    path: str,
) -> dict[str, np.ndarray]:
    """Coordinates per axis: ``given[axis]`` when passed, else ``i * L / n`` (periodic) or
    ``linspace(0, L, n)`` (both ends included, e.g. walls)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(dims))
    if unknown:
        raise DataFormatError(path, "option coords= names unknown axes", expected=list(dims), found=unknown)
    coords: dict[str, np.ndarray] = {}
    for a, n, length, per in zip(dims, grid, lengths, periodic, strict=True):
        if a in given:
            c = np.asarray(given[a], dtype=np.float64).reshape(-1)
            if c.shape != (n,):
                raise DataFormatError(
                    path, f"option coords[{a!r}] has the wrong length", expected=n, found=c.size
                )
        elif per:
            c = np.arange(n, dtype=np.float64) * length / n
        else:
            c = np.linspace(0.0, length, n, dtype=np.float64)
        coords[a] = c
    return coords


@register_reader
class NpyReader(TrajectoryDataset):
    """Trajectories from a ``.npy`` array, memory-mapped read-only (see the module docstring).

    Args:
        path: the ``.npy`` file.
        layout: one letter per array axis among ``n, t, c, x, y, z`` (default ``"ntxyc"``); e.g.
            ``"ntxyzc"`` for IFactFormer-m's channel flow ``[b, t, nx, ny, nz, c]``.
        field_names: one name per channel (default ``"c0", "c1", ...``).
        domain_lengths: box length per spatial axis (``x, y, z`` order) or one for all; default 1.0.
        periodic: periodicity per spatial axis or one for all; default ``False`` (a ``.npy`` file does not
            say).
        coords: coordinates of some spatial axes ``{axis: 1D array}`` (e.g. the channel's wall-normal
            grid); the others are ``i * L / n`` on periodic axes, ``linspace(0, L, n)`` otherwise.
        times: time stamps of the frames (length ``T``); unknown by default.
        viscosity: kinematic viscosity to record in the metadata.
    """

    format_name = "npy"
    suffixes = (".npy",)

    @classmethod
    def sniff(cls, path: Path, header: bytes) -> bool:
        """The NumPy ``.npy`` magic string ``\\x93NUMPY``."""
        return header.startswith(NPY_MAGIC)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layout: str = "ntxyc",
        field_names: Sequence[str] | None = None,
        domain_lengths: float | Sequence[float] = 1.0,
        periodic: bool | Sequence[bool] = False,
        coords: Mapping[str, Any] | None = None,
        times: Sequence[float] | None = None,
        viscosity: float | None = None,
    ) -> None:
        super().__init__(path)
        p = self.path
        self._layout = parse_layout(layout, p)
        array = self.handle()
        if array.ndim != len(self._layout.letters):
            raise DataFormatError(
                p,
                "number of dimensions does not match the layout",
                expected=f"{len(self._layout.letters)} axes ({self._layout.letters!r})",
                found=f"shape {array.shape}",
            )
        if array.dtype.kind not in "fiub":
            raise DataFormatError(
                p, "not a real numeric array", expected="float/int/bool", found=str(array.dtype)
            )
        shape = tuple(int(s) for s in array.shape)
        L = self._layout
        dims = L.spatial
        grid = tuple(L.size(shape, a) for a in dims)
        n_c = L.size(shape, "c")
        n_t = L.size(shape, "t")
        if min(shape, default=1) == 0:
            raise DataFormatError(p, "empty array", found=f"shape {shape}")
        if field_names is None:
            names = tuple(f"c{k}" for k in range(n_c))
        elif isinstance(field_names, str):
            names = (field_names,)
        else:
            names = tuple(str(name) for name in field_names)
        if len(names) != n_c:
            raise DataFormatError(
                p, "option field_names= does not match the channels", expected=n_c, found=list(names)
            )
        lengths = per_axis_floats(domain_lengths, len(dims), option="domain_lengths", path=p)
        per = per_axis_flags(periodic, len(dims), option="periodic", path=p)
        stamps = None
        if times is not None:
            stamps = np.asarray(times, dtype=np.float64).reshape(-1)
            if stamps.shape != (n_t,):
                raise DataFormatError(
                    p, "option times= does not match the frames", expected=n_t, found=stamps.size
                )
        self.metadata = DatasetMetadata(
            path=p,
            format=self.format_name,
            field_names=names,
            spatial_dims=dims,
            grid_shape=grid,
            n_trajectories=L.size(shape, "n"),
            n_times=n_t,
            coords=grid_coords(dims, grid, lengths, per, coords, p),
            times=stamps,
            periodic=per,
            domain_lengths=lengths,
            viscosity=viscosity,
            parameters={"layout": L.letters, "dtype": str(array.dtype)},
        )
        logger.debug("opened %s as %s", p, self)

    def _open_handle(self) -> np.ndarray:
        dtype = read_npy_dtype(self.path)
        if dtype.hasobject:
            raise DataFormatError(
                self.path,
                "holds Python objects (only plain numeric arrays are read; pickles never are)",
                expected="a float/int/bool array",
                found=f"dtype {dtype}",
            )
        try:
            return np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise DataFormatError(
                self.path, f"cannot memory-map ({describe_error(err)}); is the file truncated?"
            ) from err

    def _read(self, index: int, times: slice) -> np.ndarray:
        return select_frames(self.handle(), self._layout, index, times, path=self.path)


def read_npy_dtype(path: str) -> np.dtype:
    """The dtype an ``.npy`` file declares in its header (nothing else is read).

    Raises:
        DataFormatError: the file does not start with a valid ``.npy`` header.
    """
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version not in _NPY_HEADER_LENGTH_FORMATS:
                raise DataFormatError(
                    path, "unknown .npy format version", expected="1.0, 2.0 or 3.0", found=version
                )
            # numpy reads as many header bytes as the file says before checking the length: check first
            length_format = _NPY_HEADER_LENGTH_FORMATS[version]
            (length,) = struct.unpack(length_format, fh.read(struct.calcsize(length_format)))
            if length > NPY_MAX_HEADER_BYTES:
                raise DataFormatError(
                    path, "header too long", expected=f"at most {NPY_MAX_HEADER_BYTES} bytes", found=length
                )
            fh.seek(-struct.calcsize(length_format), os.SEEK_CUR)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:  # 2.0 and 3.0 differ only in the header's text encoding (3.0: UTF-8)
                _, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except DataFormatError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, struct.error, tokenize.TokenError) as err:
        raise DataFormatError(path, f"not a valid .npy header ({describe_error(err)})") from err
    return dtype
