"""Format detection: ``sciml.datasets.open(path)`` picks the reader that recognizes a file.

Each reader class registers itself with :func:`register_reader`. Detection never trusts the suffix alone:
a reader's ``sniff(path, header)`` looks at the first bytes (and, for HDF5, the keys) of the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from sciml.datasets.base import data_format_errors
from sciml.datasets.remote import RemoteOptions, is_url, local_path, read_header, suffix_of, using
from sciml.errors import ConfigError, DataFormatError

HEADER_BYTES = 1024


class Reader(Protocol):
    """What a reader class offers to the registry."""

    format_name: str
    suffixes: tuple[str, ...]

    @classmethod
    def sniff(cls, path: Path | str, header: bytes) -> bool:
        """Whether this reader recognizes the file (from its first bytes and, if needed, its keys); ``path``
        is a local path or, for a remote file, its URL."""

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None: ...


_READERS: dict[str, Any] = {}  # format name -> reader class (see Reader)


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


def open_dataset(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
    block_size: int | None = None,
    cache_type: str | None = None,
    **options: Any,
) -> Any:
    """Open a dataset file (or a zarr store) in any supported format and return a lazy dataset object.

    ``path`` may be a URL that fsspec knows (``https://``, ``s3://``, ``gs://``, ``hf://``, ``memory://``,
    ``file://``; see :mod:`sciml.datasets.remote`): HDF5-based files (The Well, PDEBench, FNO ``.mat`` v7.3,
    netCDF-4) and zarr stores are then read lazily over the network, only the bytes of the frames asked for
    travelling, in cached blocks of ``block_size`` bytes. ``.npy``, ``.pt``, MAT v5 and classic netCDF
    files are not streamed (``sciml datasets download URL`` makes a local copy). A ``file://`` URL is the
    local file.

    Memory: before any read allocates an array (when opening, e.g. coordinates, or in ``read``/indexing),
    its size is checked against a limit, so that a small file declaring a huge array (an HDF5 dataset whose
    chunks were never written, a zlib bomb inside a MAT v5 file) is refused instead of exhausting memory.
    The limit is the environment variable ``SCIML_MAX_READ_BYTES`` (bytes, e.g. ``4e9``) when set, else
    the smaller of 8 GiB (``sciml.datasets.base.DEFAULT_MAX_READ_BYTES``) and half the physical memory;
    it applies to each read (one trajectory's frames, one sample, one coordinate array; a whole MAT v5
    file, which is loaded at once).

    Args:
        path: the file, a zarr store (folder), or a URL.
        format: force a reader by name (see :func:`available_formats`); detected from the file when omitted.
        storage_options: for a URL, options of its file system (credentials, ``anon=True``, ``headers``).
        block_size: for a URL, bytes per request and cache block
            (default :data:`sciml.datasets.remote.DEFAULT_BLOCK_SIZE`).
        cache_type: for a URL, the fsspec cache (default ``"blockcache"``).
        **options: passed to the reader (e.g. ``field`` names, ``key`` names).

    Raises:
        DataFormatError: the file does not exist, is empty, no reader recognizes it, it is corrupt or
            truncated, or a read it needs exceeds the limit; for a URL also: not found (404), permission
            denied (401/403), the server cannot be reached. The message names the file or URL.
        ConfigError: an option the reader does not have, ``SCIML_MAX_READ_BYTES`` is not a number, a bad
            remote option, or a URL scheme whose package is not installed.
    """
    _load_builtin_readers()
    remote_options = RemoteOptions.from_arguments(storage_options, block_size, cache_type)
    if is_url(path):
        local = local_path(str(path))
        if local is None:
            with using(remote_options):
                return _open_url(str(path), format, options)
        path = local
    p = Path(path)
    if not p.exists():
        raise DataFormatError(p, "no such file")
    if format is not None:
        return _construct(_forced_reader(format, p), p, options)
    if p.is_dir():
        store_reader = _store_reader(p)
        if store_reader is not None:
            return _construct(store_reader, p, options)
        raise DataFormatError(p, "is a folder (and no zarr store); open one of the data files inside it")
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


def _forced_reader(format: str, path: Path | str) -> Any:
    """The reader named ``format``, or a DataFormatError listing the names."""
    if format not in _READERS:
        raise DataFormatError(
            path, "unknown format name", expected=f"one of {sorted(_READERS)}", found=format
        )
    return _READERS[format]


def _store_reader(path: Path | str) -> Any:
    """The reader of a store that is a folder (zarr), or ``None``.

    A local folder is recognized by its content (``is_store``); a URL, which cannot be listed cheaply, by
    its suffix (``.zarr``).
    """
    for reader in _READERS.values():
        is_store = getattr(reader, "is_store", None)
        if is_store is None:
            continue
        if is_url(path) and suffix_of(path) in reader.suffixes:
            return reader
        if not is_url(path) and is_store(path):
            return reader
    return None


def _open_url(url: str, format: str | None, options: dict[str, Any]) -> Any:
    """Open a remote URL: the reader is forced, a store's (by suffix), or sniffed from the first bytes."""
    reader = _forced_reader(format, url) if format is not None else _store_reader(url) or _sniff_url(url)
    if not getattr(reader, "reads_urls", False):
        raise DataFormatError(
            url,
            f"{reader.format_name} files are not streamed from a URL; make a local copy first "
            "(sciml datasets download URL)",
        )
    return _construct(reader, url, options)


def _sniff_url(url: str) -> Any:
    """The reader that recognizes the file at ``url`` from its first bytes (and, for HDF5, its keys)."""
    header = read_header(url, HEADER_BYTES)
    if not header:
        raise DataFormatError(url, "the file is empty")
    suffix = suffix_of(url)
    for reader in sorted(_READERS.values(), key=lambda r: suffix not in r.suffixes):
        if reader.sniff(url, header):
            return reader
    raise DataFormatError(
        url,
        "unknown or unreadable format",
        expected="The Well or PDEBench HDF5, FNO .mat v7.3, netCDF-4, or a .zarr store",
        found=f"suffix {suffix!r}, first bytes {header[:16]!r}",
    )


def _construct(reader: type, path: Path | str, options: dict[str, Any]) -> Any:
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
