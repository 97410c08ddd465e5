"""Generated vorticity trajectories written in the FNO Navier-Stokes ``.mat`` v7.3 layout.

The file is what FNO's ``MatReader`` (h5py, axes reversed) and MATLAB's ``load`` read: an HDF5 file behind a
512-byte MATLAB user block. For ``B`` trajectories of ``T`` frames (``times[0]`` the initial state) on an
``X x Y`` grid, the MATLAB variables are (MATLAB order; h5py shows each shape reversed)::

    a  (B, X, Y)       single   vorticity at times[0]                 h5py (Y, X, B)
    u  (B, X, Y, T-1)  single   vorticity at times[1:]                h5py (T-1, Y, X, B)
    t  (1, T-1)        double   times[1:]                             h5py (T-1, 1)

and, for sciml's reader (FNO's own reader ignores them), ``sciml_viscosity`` (1x1 double),
``sciml_t0`` (1x1 double, ``times[0]``), ``sciml_domain_lengths`` (1x2 double) and one
``sciml_<key>`` variable per writer attribute that is a string or a dict (``char``, dicts as JSON text) or a
real number or 1D array (``1 x n`` double); other attributes, and keys that are no MATLAB name, are skipped.

The user block is the 128-byte MAT header: 116 bytes of text ``"MATLAB 7.3 MAT-file, Platform: ...,
Created on: ... HDF5 schema 1.00 ."`` padded with spaces, 8 bytes of subsystem offset (zeros), the version
``0x0200`` (little-endian) and the endian indicator ``"IM"``; the rest of the 512 bytes are zeros.

Velocity is not stored (the FNO layout has no velocity).
"""

from __future__ import annotations

import json
import logging
import platform
import re
import struct
import time
from typing import Any

import h5py
import numpy as np

from sciml.datasets.writers.base import TrajectoryWriter, close_hdf5
from sciml.errors import DataFormatError

logger = logging.getLogger(__name__)

USERBLOCK_SIZE = 512
_TEXT_BYTES = 116
_CHUNK_TARGET_BYTES = 2**20  # about 1 MiB per chunk
_MATLAB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_MATLAB_NAME_MAX = 63


def mat73_header(created: float | None = None) -> bytes:
    """The 128-byte MAT-file header of a v7.3 file (text, subsystem offset, version, endian indicator)."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(created))
    text = (
        f"MATLAB 7.3 MAT-file, Platform: {platform.system() or 'unknown'} (sciml), "
        f"Created on: {stamp} HDF5 schema 1.00 ."
    ).encode("ascii", errors="replace")[:_TEXT_BYTES]
    return text.ljust(_TEXT_BYTES, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"


def _matlab_class(dataset: h5py.Dataset, name: str) -> None:
    dataset.attrs["MATLAB_class"] = np.bytes_(name.encode("ascii"))


class FnoMatWriter(TrajectoryWriter):
    """Writes vorticity trajectories as an FNO-style MATLAB v7.3 ``.mat`` file (see the module docstring).

    Written atomically (a temporary ``.<name>.<pid>.<random>.partial`` renamed on a clean close).
    ``write()`` takes vorticity ``[b, T, X, Y]``; the velocity argument is checked for shape by the base
    class and otherwise ignored.
    ``u`` is chunked ``(cT, Y, X, 1)`` on disk (one trajectory per chunk, ``cT`` frames of about 1 MiB), so
    that writing a batch along ``N`` and reading one trajectory back both touch whole chunks only.
    """

    _file: h5py.File | None = None

    def _create(self) -> None:
        n = self.n_trajectories
        n_t = len(self.times)
        if len(self.grid_shape) != 2:
            raise DataFormatError(
                self.path,
                "the FNO .mat layout holds 2D fields only",
                expected="a 2D grid",
                found=self.grid_shape,
            )
        nx, ny = self.grid_shape
        if n_t < 2 or n < 1 or nx < 1 or ny < 1:
            raise DataFormatError(
                self.path,
                "the FNO .mat layout needs an initial state plus at least one frame",
                expected="n_trajectories >= 1, >= 2 times and a non-empty grid",
                found=f"n_trajectories={n}, {n_t} times, grid {self.grid_shape}",
            )
        try:
            f = h5py.File(self.tmp_path, "x", userblock_size=USERBLOCK_SIZE, libver="earliest")
        except OSError as err:
            raise DataFormatError(self.tmp_path, f"cannot create the file ({err})") from err
        self._file = f
        try:
            self._write_layout(f, n, n_t, nx, ny)
        except Exception:
            self._flush_and_close()
            self.tmp_path.unlink(missing_ok=True)
            raise

    def _write_layout(self, f: h5py.File, n: int, n_t: int, nx: int, ny: int) -> None:
        frame_bytes = nx * ny * 4
        c_t = max(1, min(n_t - 1, _CHUNK_TARGET_BYTES // frame_bytes))
        c_n = max(1, min(n, _CHUNK_TARGET_BYTES // frame_bytes))
        a = f.create_dataset("a", shape=(ny, nx, n), dtype=np.float32, chunks=(ny, nx, c_n))
        _matlab_class(a, "single")
        u = f.create_dataset("u", shape=(n_t - 1, ny, nx, n), dtype=np.float32, chunks=(c_t, ny, nx, 1))
        _matlab_class(u, "single")
        t = f.create_dataset("t", data=self.times[1:].reshape(n_t - 1, 1).astype(np.float64))
        _matlab_class(t, "double")

        extras: dict[str, Any] = {
            "viscosity": self.viscosity,
            "t0": float(self.times[0]),
            "domain_lengths": np.asarray(self.domain_lengths, dtype=np.float64),
        }
        for key, value in self.attributes.items():
            if key in extras:
                logger.warning("%s: attribute %r is written by the writer itself; ignored", self.path, key)
                continue
            extras[key] = value
        for key, value in extras.items():
            self._write_extra(f, f"sciml_{key}", value)

    def _write_extra(self, f: h5py.File, name: str, value: Any) -> None:
        """Store one attribute as a MATLAB variable (char row or real double row), or skip it."""
        if not _MATLAB_NAME.match(name) or len(name) > _MATLAB_NAME_MAX:
            logger.debug("%s: attribute %r is no valid MATLAB name; not stored", self.path, name)
            return
        if isinstance(value, dict):
            value = json.dumps(value, default=str)
        if isinstance(value, str):
            codes = np.frombuffer(value.encode("utf-16-le"), dtype="<u2")
            if codes.size == 0:
                return
            ds = f.create_dataset(name, data=codes.reshape(-1, 1))  # MATLAB (1, n)
            _matlab_class(ds, "char")
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
            return
        if isinstance(value, bool | np.bool_):
            value = float(value)
        array = np.asarray(value) if isinstance(value, int | float | np.generic | np.ndarray) else None
        if array is None or array.dtype.kind not in "fiu" or array.ndim > 1 or array.size == 0:
            logger.debug("%s: attribute %r (%s) not stored in the .mat file", self.path, name, type(value))
            return
        ds = f.create_dataset(name, data=array.astype(np.float64).reshape(-1, 1))  # MATLAB (1, n)
        _matlab_class(ds, "double")

    def _write(self, start: int, vorticity: np.ndarray, velocity: np.ndarray) -> None:
        if self._file is None:
            raise DataFormatError(self.tmp_path, "writer is closed")
        stop = start + vorticity.shape[0]
        w = np.asarray(vorticity, dtype=np.float32)
        # MATLAB a(n, x, y) -> h5py [y, x, n];  u(n, x, y, t) -> h5py [t, y, x, n]
        self._file["a"][:, :, start:stop] = np.ascontiguousarray(w[:, 0].transpose(2, 1, 0))
        self._file["u"][:, :, :, start:stop] = np.ascontiguousarray(w[:, 1:].transpose(1, 3, 2, 0))

    def _flush_and_close(self) -> None:
        handle, self._file = self._file, None
        if handle is None:
            return
        close_hdf5(handle)
        if self.tmp_path.exists():
            with open(self.tmp_path, "r+b") as fh:
                fh.write(mat73_header())
