"""Format detection: ``sciml.datasets.open(path)`` picks the reader that recognizes a file.

Each reader class registers itself with :func:`register_reader`. Detection never trusts the suffix alone:
a reader's ``sniff(path, header)`` looks at the first bytes (and, for HDF5, the keys) of the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from sciml.datasets.base import data_format_errors
from sciml.errors import ConfigError, DataFormatError

HEADER_BYTES = 1024


class Reader(Protocol):
    """What a reader class offers to the registry."""

    format_name: str
    suffixes: tuple[str, ...]

    @classmethod
    def sniff(cls, path: Path, header: bytes) -> bool:
        """Whether this reader recognizes the file (from its first bytes and, if needed, its keys)."""

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None: ...


_READERS: dict[str, type] = {}


def register_reader(cls: type) -> type:
    """Class decorator that makes a reader known to :func:`open_dataset`."""
    _READERS[cls.format_name] = cls
    return cls


def available_formats() -> list[str]:
    """Names of every registered format."""
    _load_builtin_readers()
    return sorted(_READERS)


def _load_builtin_readers() -> None:
    """Import the modules of the built-in readers (they register themselves)."""
    import sciml.datasets.readers  # noqa: F401


def open_dataset(path: str | os.PathLike[str], format: str | None = None, **options: Any) -> Any:
    """Open a dataset file in any supported format and return a lazy dataset object.

    Memory: before any read allocates an array (when opening, e.g. coordinates, or in ``read``/indexing),
    its size is checked against a limit, so that a small file declaring a huge array (an HDF5 dataset whose
    chunks were never written, a zlib bomb inside a MAT v5 file) is refused instead of exhausting memory.
    The limit is the environment variable ``SCIML_MAX_READ_BYTES`` (bytes, e.g. ``4e9``) when set, else
    the smaller of 8 GiB (``sciml.datasets.base.DEFAULT_MAX_READ_BYTES``) and half the physical memory;
    it applies to each read (one trajectory's frames, one sample, one coordinate array; a whole MAT v5
    file, which is loaded at once).

    Args:
        path: the file.
        format: force a reader by name (see :func:`available_formats`); detected from the file when omitted.
        **options: passed to the reader (e.g. ``field`` names, ``key`` names).

    Raises:
        DataFormatError: the file does not exist, is empty, no reader recognizes it, it is corrupt or
            truncated, or a read it needs exceeds the limit; the message names the file.
        ConfigError: an option the reader does not have, or ``SCIML_MAX_READ_BYTES`` is not a number.
    """
    _load_builtin_readers()
    p = Path(path)
    if not p.exists():
        raise DataFormatError(p, "no such file")
    if format is not None:
        if format not in _READERS:
            raise DataFormatError(
                p, "unknown format name", expected=f"one of {sorted(_READERS)}", found=format
            )
        return _construct(_READERS[format], p, options)
    if p.is_dir():
        raise DataFormatError(p, "is a folder; open one of the data files inside it")
    with data_format_errors(p, "read the file"), open(p, "rb") as fh:
        header = fh.read(HEADER_BYTES)
    if not header:
        raise DataFormatError(p, "the file is empty")
    candidates = sorted(_READERS.values(), key=lambda r: p.suffix.lower() not in r.suffixes)
    for reader in candidates:
        if reader.sniff(p, header):
            return _construct(reader, p, options)
    from sciml.datasets.readers.hdf5_common import looks_like_hdf5

    if looks_like_hdf5(p, header):
        import h5py

        with data_format_errors(p, "open as HDF5"), h5py.File(p, "r") as fh:
            keys = sorted(fh.keys())
        raise DataFormatError(
            p,
            "an HDF5 file in no known layout (or a damaged one)",
            expected="The Well (t0_fields/...), PDEBench (density/Vx..., velocity/particles, or 0000/data)",
            found=f"top-level keys {keys}",
        )
    raise DataFormatError(
        p,
        "unknown or unreadable format",
        expected=("FNO .mat (v5/v7.3), neuraloperator .pt, PDEBench or The Well HDF5, netCDF, or .npy"),
        found=f"suffix {p.suffix!r}, first bytes {header[:16]!r}",
    )


def _construct(reader: type, path: Path, options: dict[str, Any]) -> Any:
    """Instantiate a reader; an unknown option is a ConfigError naming the reader's options."""
    import inspect

    params = inspect.signature(reader.__init__).parameters
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    valid = [name for name in params if name not in ("self", "path")]
    for key in options:
        if not accepts_any and key not in valid:
            raise ConfigError(
                f"{path}: reader {reader.format_name!r} has no option {key!r}; "
                f"options: {', '.join(valid) or 'none'}"
            )
    with data_format_errors(path, f"open as {reader.format_name}"):
        return reader(path, **options)
