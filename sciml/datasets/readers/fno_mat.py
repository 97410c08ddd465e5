"""FNO Navier-Stokes ``.mat`` files (Li et al., "Fourier Neural Operator for Parametric PDEs", ICLR 2021).

The released files (``NavierStokes_V1e-3_N5000_T50.mat``, ``ns_V1e-4_N10000_T30.mat``,
``NavierStokes_V1e-5_N1200_T20.mat``) hold three MATLAB variables, in MATLAB (column-major) order:

* ``a``: ``(N, X, Y)``, the vorticity at ``t = 0``;
* ``u``: ``(N, X, Y, T)``, the vorticity at ``t = dt, 2 dt, ..., T dt`` (``t = 0`` excluded);
* ``t``: ``(1, T)``, the time stamps of the frames of ``u``.

Two container versions exist:

* **v7.3** (header text ``"MATLAB 7.3 MAT-file"``): an HDF5 file behind a 512-byte user block. HDF5 is
  row-major, so h5py shows every axis reversed: ``u`` is ``(T, Y, X, N)``, ``a`` ``(Y, X, N)`` and ``t``
  ``(T, 1)``. These files are read **lazily** through one h5py handle per process: only the frames of
  the trajectory asked for are read. Note that ``N`` is the fastest-varying axis on disk, so one
  trajectory is a strided selection; files written by :class:`~sciml.datasets.writers.fno_mat.FnoMatWriter`
  are chunked per trajectory, which makes that selection cheap.
* **v5** (header text ``"MATLAB 5.0 MAT-file"``): read with :func:`scipy.io.loadmat`, which returns
  arrays in MATLAB order. The v5 container has no random access, so the selected variables are loaded
  into memory **in full** when the reader is created (``scipy.io.whosmat`` is used first, so unknown
  or missing variables are reported without loading anything). Before loading, each variable's declared
  size and each compressed element's inflated size are checked against the read limit
  (:func:`sciml.datasets.base.max_read_bytes`): a small file that inflates to gigabytes is refused.

Trajectory ``i`` is ``[a[i], u[i, ..., 0], ..., u[i, ..., T-1]]``: ``n_times = T + 1`` frames of one
channel, ``"vorticity"``; the times are ``[0, *t]`` when ``t`` exists, else ``None``. A file that has no
initial-state variable (only ``u``; see ``input_key``) gives trajectories of the ``u`` frames only
(``n_times = T``, times ``t``).

The grid is the periodic unit square: ``x_i = i / X``, ``y_j = j / Y``. The files do not store the
viscosity (it is only in the file name); pass ``viscosity=``. Files written by sciml's
``FnoMatWriter`` carry extra variables named ``sciml_*`` (viscosity, initial time, box lengths and
the generator's attributes), which are used when present.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sciml.datasets.base import (
    MAX_READ_BYTES_ENV,
    TrajectoryDataset,
    check_read_size,
    describe_error,
    format_bytes,
    max_read_bytes,
)
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.readers.hdf5_common import open_hdf5, read_array
from sciml.datasets.registry import register_reader
from sciml.datasets.remote import is_remote, open_binary
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)

V73_HEADER = b"MATLAB 7.3 MAT-file"
V5_HEADER = b"MATLAB 5.0 MAT-file"
#: Prefix of the extra variables written by :class:`~sciml.datasets.writers.fno_mat.FnoMatWriter`.
EXTRA_PREFIX = "sciml_"
DEFAULT_INPUT_KEY = "a"
DEFAULT_TIME_KEY = "t"
_CHUNK_CACHE_BYTES = 16 * 2**20
#: Bytes per value of the MATLAB classes ``scipy.io.whosmat`` reports that this reader loads (``char``
#: becomes a NumPy unicode string of 4 bytes a character).
_V5_CLASS_ITEMSIZE = {
    "double": 8,
    "single": 4,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "logical": 1,
    "char": 4,
}
_V5_HEADER_BYTES = 128
_MI_COMPRESSED = 15
_INFLATE_PIECE = 2**20


def _extra_value(array: np.ndarray, matlab_class: str) -> Any:
    """Decode a ``sciml_*`` variable: a ``char`` array becomes ``str``, a 1-element number a float."""
    if matlab_class == "char" or array.dtype.kind == "U":
        if array.dtype.kind == "U":
            return "".join(str(s) for s in np.asarray(array).reshape(-1))
        codes = np.asarray(array).reshape(-1).astype("<u2")
        return codes.tobytes().decode("utf-16-le", errors="replace")
    values = np.asarray(array, dtype=np.float64).reshape(-1)
    if values.size == 1:
        return float(values[0])
    return values


@register_reader
class FnoMatReader(TrajectoryDataset):
    """FNO Navier-Stokes vorticity trajectories from a MATLAB ``.mat`` file (v7.3 lazily, or v5).

    See the module docstring for the layout. One channel (``field_name``, default ``"vorticity"``).

    Args:
        path: the ``.mat`` file.
        input_key: variable holding the initial state ``(N, X, Y)`` (MATLAB order). ``None``: none, the
            trajectories are the ``output_key`` frames only. When the default ``"a"`` is absent from the
            file, the reader falls back to ``u`` frames only and logs a warning; any other name that is
            absent is an error.
        output_key: variable holding the frames ``(N, X, Y, T)`` (MATLAB order); required.
        time_key: variable holding the time stamps ``(1, T)``; ``None`` for none. The default ``"t"`` may
            be absent (times are then unknown); any other name must exist.
        viscosity: kinematic viscosity (the FNO files do not store it; e.g. ``1e-3`` for
            ``NavierStokes_V1e-3_N5000_T50.mat``).
        domain_lengths: box lengths ``(Lx, Ly)``; default ``(1.0, 1.0)`` (FNO's unit square).
        field_name: name of the one channel.
    """

    format_name = "fno_mat"
    suffixes = (".mat",)
    reads_urls = True  # v7.3 (HDF5) only

    @classmethod
    def sniff(cls, path: Path, header: bytes) -> bool:
        """A MAT-file header: text ``"MATLAB 7.3 MAT-file"`` or ``"MATLAB 5.0 MAT-file"``."""
        return header.startswith(V73_HEADER) or header.startswith(V5_HEADER)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        input_key: str | None = DEFAULT_INPUT_KEY,
        output_key: str = "u",
        time_key: str | None = DEFAULT_TIME_KEY,
        viscosity: float | None = None,
        domain_lengths: Sequence[float] | None = None,
        field_name: str = "vorticity",
    ) -> None:
        super().__init__(path)
        p = self.path
        given_lengths = None
        if domain_lengths is not None:
            given_lengths = tuple(float(v) for v in domain_lengths)
            if len(given_lengths) != 2:
                raise DataFormatError(
                    p, "option domain_lengths= needs two values", expected=2, found=given_lengths
                )
        try:
            with open_binary(p, self.remote_options) as fh:
                header = fh.read(128)
        except OSError as err:
            raise DataFormatError(p, f"cannot read the file ({describe_error(err)})") from err
        if header.startswith(V73_HEADER):
            self._version = "7.3"
        elif header.startswith(V5_HEADER):
            self._version = "5"
            if is_remote(p):
                raise DataFormatError(
                    p,
                    "a MAT v5 file is loaded whole, never streamed; make a local copy first "
                    "(sciml datasets download URL)",
                )
        else:
            raise DataFormatError(
                p,
                "not a MATLAB v5 or v7.3 MAT-file",
                expected=f"header text {V73_HEADER!r} or {V5_HEADER!r}",
                found=repr(header[:20]),
            )
        self._input_key: str | None = None
        self._time_key: str | None = None
        self._output_key = output_key
        self._arrays: dict[str, np.ndarray] = {}  # v5 only: the variables, in MATLAB order
        with self.closed_on_error():
            if self._version == "7.3":
                n, nx, ny, n_u, t, extras = self._inspect_v73(input_key, output_key, time_key)
            else:
                n, nx, ny, n_u, t, extras = self._inspect_v5(input_key, output_key, time_key)
        has_input = self._input_key is not None
        n_times = n_u + int(has_input)
        t0 = float(extras.get("t0", 0.0))
        times: np.ndarray | None = None
        if t is not None:
            times = np.concatenate([[t0], t]) if has_input else t
        nu = viscosity if viscosity is not None else extras.get("viscosity")
        stored = np.asarray(extras.get("domain_lengths", ()), dtype=np.float64).reshape(-1)
        if given_lengths is not None:
            lengths = given_lengths
        elif stored.size == 2:
            lengths = (float(stored[0]), float(stored[1]))
        else:
            lengths = (1.0, 1.0)
        parameters = {
            k: v
            for k, v in extras.items()
            if k not in ("viscosity", "t0", "domain_lengths") and isinstance(v, str | float)
        }
        parameters["mat_version"] = self._version
        self.metadata = DatasetMetadata(
            path=p,
            format=self.format_name,
            field_names=(field_name,),
            spatial_dims=("x", "y"),
            grid_shape=(nx, ny),
            n_trajectories=n,
            n_times=n_times,
            coords={
                "x": np.arange(nx, dtype=np.float64) * lengths[0] / nx,
                "y": np.arange(ny, dtype=np.float64) * lengths[1] / ny,
            },
            times=times,
            periodic=(True, True),
            domain_lengths=lengths,
            viscosity=float(nu) if isinstance(nu, int | float) else None,
            parameters=parameters,
        )
        logger.debug("opened %s (MAT v%s) as %s", p, self._version, self)

    # ------------------------------------------------------------------------------------------------------
    # opening
    # ------------------------------------------------------------------------------------------------------

    def _open_handle(self) -> h5py.File | None:
        if self._version != "7.3":
            return None
        if is_remote(self.path):
            return open_hdf5(self.path, self.remote_options, rdcc_nbytes=_CHUNK_CACHE_BYTES)
        try:
            return h5py.File(self.path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
        except OSError as err:
            raise DataFormatError(
                self.path,
                f"cannot open the MAT v7.3 (HDF5) content ({describe_error(err)}); is the file truncated?",
            ) from err

    def _missing(self, key: str, role: str, present: Sequence[str]) -> DataFormatError:
        return DataFormatError(
            self.path,
            f"no variable for {role}; choose another with the option {role}_key=",
            key=key,
            expected=f"one of the variables {sorted(present)}",
            found="nothing",
        )

    def _resolve_keys(
        self, present: Sequence[str], input_key: str | None, output_key: str, time_key: str | None
    ) -> tuple[str | None, str | None]:
        """Check which requested variables exist; returns the input and time keys to use."""
        if output_key not in present:
            raise self._missing(output_key, "output", present)
        if input_key is not None and input_key not in present:
            if input_key != DEFAULT_INPUT_KEY:
                raise self._missing(input_key, "input", present)
            logger.warning(
                "%s: no initial-state variable %r; trajectories are the %r frames only",
                self.path,
                input_key,
                output_key,
            )
            input_key = None
        if time_key is not None and time_key not in present:
            if time_key != DEFAULT_TIME_KEY:
                raise self._missing(time_key, "time", present)
            time_key = None
        return input_key, time_key

    def _check_shapes(
        self, u_shape: tuple[int, ...], a_shape: tuple[int, ...] | None, t_size: int | None
    ) -> tuple[int, int, int, int]:
        """Validate MATLAB-order shapes ``u (N, X, Y, T)``, ``a (N, X, Y)``, ``t`` with ``T`` entries."""
        p = self.path
        if len(u_shape) != 4:
            raise DataFormatError(
                p,
                "wrong number of dimensions",
                key=self._output_key,
                expected="4 axes (N, X, Y, T) in MATLAB order",
                found=f"shape {u_shape} (MATLAB order)",
            )
        n, nx, ny, n_u = u_shape
        if a_shape is not None:
            if len(a_shape) != 3:
                raise DataFormatError(
                    p,
                    "wrong number of dimensions",
                    key=self._input_key,
                    expected="3 axes (N, X, Y) in MATLAB order",
                    found=f"shape {a_shape} (MATLAB order)",
                )
            if tuple(a_shape) != (n, nx, ny):
                raise DataFormatError(
                    p,
                    f"number of samples or grid differs from {self._output_key!r}",
                    key=self._input_key,
                    expected=f"(N, X, Y) = {(n, nx, ny)}",
                    found=tuple(a_shape),
                )
        if t_size is not None and t_size != n_u:
            raise DataFormatError(
                p,
                f"number of time stamps differs from the frames of {self._output_key!r}",
                key=self._time_key,
                expected=n_u,
                found=t_size,
            )
        if min(n, nx, ny) == 0:
            raise DataFormatError(p, "empty variable", key=self._output_key, found=f"shape {u_shape}")
        return n, nx, ny, n_u

    def _inspect_v73(
        self, input_key: str | None, output_key: str, time_key: str | None
    ) -> tuple[int, int, int, int, np.ndarray | None, dict[str, Any]]:
        f: h5py.File = self.handle()
        p = self.path
        try:
            present = list(f.keys())
        except (OSError, RuntimeError) as err:
            raise DataFormatError(
                p, f"cannot list the variables ({describe_error(err)}); is the file truncated?"
            ) from err
        self._input_key, self._time_key = self._resolve_keys(present, input_key, output_key, time_key)

        def dataset(key: str) -> h5py.Dataset:
            obj = f.get(key)
            if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "fiub":
                if isinstance(obj, h5py.Dataset):
                    found = f"dtype {obj.dtype}"
                else:
                    found = "a group (struct)" if isinstance(obj, h5py.Group) else "a broken link"
                raise DataFormatError(
                    p, "not a real numeric array", key=key, expected="a numeric array", found=found
                )
            return obj

        u = dataset(output_key)
        a = dataset(self._input_key) if self._input_key is not None else None
        t_ds = dataset(self._time_key) if self._time_key is not None else None
        # h5py shows MATLAB's axes reversed
        n, nx, ny, n_u = self._check_shapes(
            tuple(reversed(u.shape)),
            tuple(reversed(a.shape)) if a is not None else None,
            int(t_ds.size) if t_ds is not None else None,
        )
        t = None
        if t_ds is not None:
            t = read_array(t_ds, p).astype(np.float64).reshape(-1)
        extras: dict[str, Any] = {}
        for key in present:
            if not key.startswith(EXTRA_PREFIX):
                continue
            obj = f.get(key)
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu" and obj.size < 2**16:
                cls = obj.attrs.get("MATLAB_class", b"")
                cls = cls.decode() if isinstance(cls, bytes) else str(cls)
                extras[key[len(EXTRA_PREFIX) :]] = _extra_value(read_array(obj, p), cls)
        return n, nx, ny, n_u, t, extras

    def _inspect_v5(
        self, input_key: str | None, output_key: str, time_key: str | None
    ) -> tuple[int, int, int, int, np.ndarray | None, dict[str, Any]]:
        import scipy.io

        p = self.path
        try:
            listing = scipy.io.whosmat(p)
        except Exception as err:  # scipy raises many types on corrupt files
            raise DataFormatError(
                p, f"cannot read the MAT v5 directory ({describe_error(err)}); is the file truncated?"
            ) from err
        info = {name: (tuple(int(s) for s in shape), cls) for name, shape, cls in listing}
        self._input_key, self._time_key = self._resolve_keys(list(info), input_key, output_key, time_key)
        wanted = [k for k in (output_key, self._input_key, self._time_key) if k is not None]
        for key in wanted:
            if info[key][1] not in _V5_CLASS_ITEMSIZE or info[key][1] == "char":
                raise DataFormatError(
                    p, "not a real numeric array", key=key, expected="a numeric array", found=info[key][1]
                )
        wanted += [
            k
            for k, (shape, cls) in info.items()
            if k.startswith(EXTRA_PREFIX) and cls in _V5_CLASS_ITEMSIZE and math.prod(shape) < 2**16
        ]
        for key in wanted:
            shape, cls = info[key]
            check_read_size(
                p, shape, _V5_CLASS_ITEMSIZE[cls], key=key, what="loading this MAT v5 variable (loaded whole)"
            )
        try:
            check_v5_inflated_sizes(p)
            loaded = scipy.io.loadmat(p, variable_names=wanted, squeeze_me=False, chars_as_strings=True)
        except DataFormatError:
            raise
        except Exception as err:  # scipy and zlib raise many types on corrupt files
            raise DataFormatError(
                p, f"cannot load the MAT v5 variables ({describe_error(err)}); is the file truncated?"
            ) from err
        for key in wanted:
            if key not in loaded:
                raise DataFormatError(p, "variable listed but not loadable", key=key)
        for key in (output_key, self._input_key, self._time_key):
            if key is None:
                continue
            array = np.asarray(loaded[key])
            if array.dtype.kind not in "fiub":
                raise DataFormatError(
                    p, "not a real numeric array", key=key, expected="a numeric array", found=f"{array.dtype}"
                )
            self._arrays[key] = array
        u = self._arrays[output_key]
        a = self._arrays.get(self._input_key) if self._input_key is not None else None
        t_arr = self._arrays.pop(self._time_key) if self._time_key is not None else None
        n, nx, ny, n_u = self._check_shapes(
            u.shape, a.shape if a is not None else None, int(t_arr.size) if t_arr is not None else None
        )
        t = t_arr.astype(np.float64).reshape(-1) if t_arr is not None else None
        extras: dict[str, Any] = {}
        for key in wanted:
            if key.startswith(EXTRA_PREFIX):
                value = np.asarray(loaded[key])
                if value.dtype.kind in "fiuU":
                    extras[key[len(EXTRA_PREFIX) :]] = _extra_value(
                        value, "char" if value.dtype.kind == "U" else ""
                    )
        logger.info("%s: MAT v5 file loaded into memory (v5 has no random access)", p)
        return n, nx, ny, n_u, t, extras

    # ------------------------------------------------------------------------------------------------------
    # reading
    # ------------------------------------------------------------------------------------------------------
    def _read_h5(self, dataset: h5py.Dataset, selection: Any) -> np.ndarray:
        """``dataset[selection]`` of the v7.3 file, size-checked (see :func:`read_array`)."""
        return read_array(dataset, self.path, selection)

    def _read(self, index: int, times: slice) -> np.ndarray:
        nx, ny = self.metadata.grid_shape
        frames = range(times.start, times.stop, times.step)
        if len(frames) == 0:
            return np.empty((0, 1, nx, ny), dtype=np.float32)
        offset = int(self._input_key is not None)
        blocks: list[np.ndarray] = []
        if offset and frames[0] == 0:
            blocks.append(self._read_input(index)[None])
            frames = frames[1:]
        if len(frames):
            u_slice = slice(frames[0] - offset, frames[-1] - offset + 1, frames.step)
            blocks.append(self._read_output(index, u_slice))
        if len(blocks) == 2 and blocks[0].dtype != blocks[1].dtype:
            dtype = np.result_type(blocks[0].dtype, blocks[1].dtype)
            blocks = [b.astype(dtype) for b in blocks]
        array = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
        return array[:, None]  # [T_sel, 1, X, Y]

    def _read_input(self, index: int) -> np.ndarray:
        """The initial state of trajectory ``index`` as ``[X, Y]``."""
        assert self._input_key is not None
        if self._version == "7.3":
            ds = self.handle()[self._input_key]  # (Y, X, N)
            return self._read_h5(ds, np.s_[:, :, index]).T
        return np.array(self._arrays[self._input_key][index])

    def _read_output(self, index: int, frames: slice) -> np.ndarray:
        """Frames ``frames`` of ``u`` for trajectory ``index`` as ``[T_sel, X, Y]``."""
        if self._version == "7.3":
            ds = self.handle()[self._output_key]  # (T, Y, X, N)
            return self._read_h5(ds, np.s_[frames, :, :, index]).transpose(0, 2, 1)
        return np.array(self._arrays[self._output_key][index, :, :, frames].transpose(2, 0, 1))


def check_v5_inflated_sizes(path: str) -> None:
    """Refuse a MAT v5 file whose compressed elements inflate to more than the read limit.

    The top-level data elements are walked (8-byte tags: type, byte count); each ``miCOMPRESSED`` one is
    inflated in pieces of 1 MiB that are counted and dropped, so memory stays bounded whatever the file
    holds. The declared array sizes are checked separately (from ``scipy.io.whosmat``); this catches data
    that inflate to more than their headers declare.
    """
    limit = max_read_bytes()
    with open(path, "rb") as fh:
        header = fh.read(_V5_HEADER_BYTES)
        if header[126:128] not in (b"IM", b"MI"):
            raise DataFormatError(
                path, "unknown byte order mark", expected="'IM' or 'MI'", found=header[126:128]
            )
        endian = "<" if header[126:128] == b"IM" else ">"
        start = _V5_HEADER_BYTES
        while len(tag := fh.read(8)) == 8:
            mdtype, nbytes = struct.unpack(f"{endian}II", tag)
            if mdtype >> 16:  # a small data element: its (at most 4) bytes sit inside the tag
                start += 8
                continue
            if mdtype == _MI_COMPRESSED and _inflated_size(fh, nbytes, limit) > limit:
                raise DataFormatError(
                    path,
                    f"the compressed element at byte {start} inflates to more than the read limit",
                    expected=f"at most {format_bytes(limit)} (raise it with {MAX_READ_BYTES_ENV}=<bytes>)",
                )
            start += 8 + nbytes
            fh.seek(start)


def _inflated_size(fh: Any, nbytes: int, cap: int) -> int:
    """Bytes the ``nbytes`` of zlib data at the position of ``fh`` inflate to, counted up to just past
    ``cap`` (nothing is kept)."""
    inflater = zlib.decompressobj()
    total, remaining = 0, nbytes
    while remaining > 0 and not inflater.eof:
        data = fh.read(min(remaining, _INFLATE_PIECE))
        if not data:
            break
        remaining -= len(data)
        while data and not inflater.eof:
            total += len(inflater.decompress(data, _INFLATE_PIECE))
            if total > cap:
                return total
            data = inflater.unconsumed_tail
    return total
