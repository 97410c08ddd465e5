"""Data at a URL: fsspec file objects for the readers, clear errors, and checksummed local copies.

``sciml.datasets.open("https://host/data/train/x.hdf5")`` (or ``s3://``, ``gs://``, ``hf://datasets/...``,
``memory://``, ``file://``) opens the file through `fsspec <https://filesystem-spec.readthedocs.io>`_ and
hands the readers a seekable file object: h5py (and h5netcdf) read HDF5 from a Python file object, so a
lazy read stays lazy and only the byte ranges of the requested frames travel, in blocks of
``block_size`` bytes kept in fsspec's cache (``cache_type``, default ``"blockcache"``: the most recently
used blocks, so the HDF5 metadata read at every window stays local). ``file://`` URLs and plain paths
are the same local file and are read exactly as before.

Every failure names the URL in one :class:`~sciml.errors.DataFormatError` (not found / HTTP 404,
permission denied / HTTP 401 or 403, unreachable host or no network, another HTTP status) or, for a URL
scheme that needs a package that is missing (``s3://`` without s3fs), one
:class:`~sciml.errors.ConfigError`.

Streaming is slower than a local disk for training, which reads every window many times:
:func:`download` (``sciml datasets download URL``) makes a local copy, written under a temporary name and
renamed when complete and checked, with its SHA-256 beside it (``<file>.sha256``, the ``sha256sum``
format).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import re
import secrets
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sciml.datasets.base import describe_error
from sciml.errors import ConfigError, DataFormatError, SciMLError

logger = logging.getLogger(__name__)

#: Bytes fetched per request and kept per cache block; the loader benchmark (BENCHMARKS.md, issue 17)
#: measures the bytes moved per window and the windows per second for several sizes.
DEFAULT_BLOCK_SIZE = 256 * 2**10
#: fsspec cache of a remote file: ``"blockcache"`` keeps the most recently used blocks (fsspec's LRU).
DEFAULT_CACHE_TYPE = "blockcache"
#: Names of the keyword arguments of :func:`sciml.datasets.open` that configure remote reading.
REMOTE_OPTION_NAMES = ("storage_options", "block_size", "cache_type")
#: Bytes read and hashed at a time by :func:`download`.
DOWNLOAD_CHUNK_BYTES = 8 * 2**20
CHECKSUM_SUFFIX = ".sha256"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")


# ----------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class RemoteOptions:
    """How remote files are read.

    Attributes:
        block_size: bytes per request and per cache block (> 0).
        cache_type: an fsspec cache name (``"blockcache"``, ``"readahead"``, ``"bytes"``, ``"none"``, ...).
        storage_options: keyword arguments of the file system (credentials, ``anon=True``, HTTP
            ``headers``, ...), passed to ``fsspec.core.url_to_fs``.
    """

    block_size: int = DEFAULT_BLOCK_SIZE
    cache_type: str = DEFAULT_CACHE_TYPE
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from fsspec.caching import caches

        size = self.block_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"block_size must be a positive number of bytes, got {size!r}")
        if self.cache_type not in caches:
            names = sorted(name for name in caches if name)
            raise ConfigError(f"cache_type {self.cache_type!r} is not an fsspec cache; one of {names}")
        if not isinstance(self.storage_options, Mapping):
            raise ConfigError(
                f"storage_options must be a mapping of file-system options, got {self.storage_options!r}"
            )

    @classmethod
    def from_arguments(
        cls,
        storage_options: Mapping[str, Any] | None = None,
        block_size: int | None = None,
        cache_type: str | None = None,
    ) -> RemoteOptions:
        """The options of :func:`sciml.datasets.open`'s keywords, defaults for those not given."""
        return cls(
            block_size=DEFAULT_BLOCK_SIZE if block_size is None else block_size,
            cache_type=DEFAULT_CACHE_TYPE if cache_type is None else cache_type,
            storage_options=dict(storage_options or {}),
        )


_ACTIVE: contextvars.ContextVar[RemoteOptions | None] = contextvars.ContextVar("sciml_remote", default=None)


@contextlib.contextmanager
def using(options: RemoteOptions) -> Iterator[None]:
    """Make ``options`` those of the readers constructed (and the files sniffed) inside the block."""
    token = _ACTIVE.set(options)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_options() -> RemoteOptions:
    """The options set by :func:`using`, else the defaults."""
    return _ACTIVE.get() or RemoteOptions()


# ----------------------------------------------------------------------------------------------- names
def is_url(path: Any) -> bool:
    """Whether ``path`` is a URL (``scheme://...``, including ``file://``) rather than a local path."""
    return isinstance(path, str) and _SCHEME.match(path) is not None


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL of something other than a local file (not ``file://``)."""
    return is_url(path) and local_path(path) is None


def local_path(url: str) -> Path | None:
    """The local file of a ``file://`` URL (``None`` for any other scheme).

    Raises:
        ConfigError: a ``file://`` URL naming another host.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"{url}: a file:// URL must name a local file (file:///path), not host {parts.netloc!r}"
        )
    return Path(urllib.parse.unquote(parts.path))


def url_name(path: str | os.PathLike[str]) -> str:
    """The last component of a path or a URL's path (``"x.hdf5"`` for ``https://h/d/x.hdf5?raw=1``)."""
    if is_url(path):
        return PurePosixPath(urllib.parse.unquote(urllib.parse.urlsplit(str(path)).path).rstrip("/")).name
    return Path(path).name


def suffix_of(path: str | os.PathLike[str]) -> str:
    """The lower-case suffix of a path or a URL's path (``".hdf5"``)."""
    return PurePosixPath(url_name(path)).suffix.lower()


# ----------------------------------------------------------------------------------------------- errors
def _http_status(err: BaseException) -> int | None:
    status = getattr(err, "status", None)
    return status if isinstance(status, int) and 100 <= status < 600 else None


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_network_failure(err: BaseException) -> bool:
    """A connection that could not be made or was lost (refused, unknown host, timeout, reset)."""
    import socket

    kinds: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        asyncio.TimeoutError,
        socket.gaierror,
    )
    try:
        import aiohttp

        kinds += (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
    except ImportError:  # pragma: no cover - fsspec's http file system needs aiohttp
        pass
    return isinstance(err, kinds)


def remote_error(url: str, err: BaseException, doing: str) -> SciMLError:
    """The one sciml error that says why ``doing`` failed on ``url`` (what fsspec, aiohttp or a file
    system package raised, and what it was raised from)."""
    for cause in _causes(err):
        status = _http_status(cause)
        if status in (401, 403):
            return DataFormatError(
                url,
                f"cannot {doing}: permission denied (HTTP {status}); check the URL and the credentials "
                "(storage_options)",
            )
        if status == 404:
            return DataFormatError(url, f"cannot {doing}: not found (HTTP 404)")
        if status is not None and status >= 400:
            return DataFormatError(url, f"cannot {doing}: the server answered HTTP {status}")
        if _is_network_failure(cause):
            return DataFormatError(
                url,
                f"cannot {doing}: the server cannot be reached ({describe_error(cause)}); no network, "
                "a wrong host or port, or the server is down",
            )
    if isinstance(err, PermissionError):
        return DataFormatError(url, f"cannot {doing}: permission denied ({describe_error(err)})")
    if isinstance(err, IsADirectoryError):
        return DataFormatError(url, f"cannot {doing}: is a folder; open one of the data files inside it")
    if isinstance(err, FileNotFoundError):
        return DataFormatError(url, f"cannot {doing}: not found (no such file or object)")
    if isinstance(err, ImportError):
        return ConfigError(
            f"{url}: reading {_scheme(url)}:// URLs needs a package that is not installed ({err})"
        )
    if isinstance(err, ValueError) and "protocol not known" in str(err).lower():
        return ConfigError(f"{url}: unknown URL scheme {_scheme(url)!r} (fsspec knows no such file system)")
    return DataFormatError(url, f"cannot {doing} ({describe_error(err)})")


def _scheme(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


@contextlib.contextmanager
def remote_errors(url: str, doing: str) -> Iterator[None]:
    """Turn whatever opening or reading ``url`` raises into :func:`remote_error`'s sciml error."""
    try:
        yield
    except SciMLError:
        raise
    except Exception as err:
        raise remote_error(url, err, doing) from err


# ----------------------------------------------------------------------------------------------- opening
def filesystem(url: str, options: RemoteOptions | None = None) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path inside it (errors as in :func:`remote_errors`)."""
    import fsspec.core

    opts = options or active_options()
    with remote_errors(url, "open"):
        fs, fs_path = fsspec.core.url_to_fs(url, **dict(opts.storage_options))
    return fs, fs_path


def open_url(url: str, options: RemoteOptions | None = None) -> IO[bytes]:
    """A seekable binary file object reading ``url`` in cached blocks (the caller closes it).

    Raises:
        DataFormatError: not found, permission denied, unreachable, ...; the message names the URL.
        ConfigError: an unknown scheme, or one whose file system package is not installed.
    """
    opts = options or active_options()
    fs, fs_path = filesystem(url, opts)
    with remote_errors(url, "open"):
        try:
            handle = fs.open(fs_path, "rb", block_size=opts.block_size, cache_type=opts.cache_type)
        except TypeError:  # a file system whose files take no cache options (e.g. memory://)
            handle = fs.open(fs_path, "rb")
    logger.debug("opened %s (block %d bytes, cache %s)", url, opts.block_size, opts.cache_type)
    return handle


def open_binary(path: str | os.PathLike[str], options: RemoteOptions | None = None) -> IO[bytes]:
    """A binary file object of a local path, a ``file://`` URL or a remote URL."""
    if is_url(path):
        local = local_path(str(path))
        if local is None:
            return open_url(str(path), options)
        path = local
    return open(path, "rb")


def read_header(url: str, n_bytes: int, options: RemoteOptions | None = None) -> bytes:
    """The first ``n_bytes`` of ``url`` (fewer for a shorter file)."""
    with remote_errors(url, "read"), open_url(url, options) as fh:
        return fh.read(n_bytes)


def open_hdf5_url(url: str, options: RemoteOptions | None = None, **h5py_options: Any) -> Any:
    """An ``h5py.File`` reading ``url`` through :func:`open_url` (lazily: h5py reads what it needs).

    Raises:
        DataFormatError: the URL cannot be opened, or its content is not HDF5.
    """
    handle = open_url(url, options)
    try:
        with remote_errors(url, "open as HDF5"):
            f = _remote_hdf5_class()(handle, "r", **h5py_options)
    except BaseException:
        handle.close()
        raise
    f._sciml_fileobj = handle
    return f


@functools.lru_cache(maxsize=1)
def _remote_hdf5_class() -> type:
    """``h5py.File`` that also closes the fsspec file object it reads (h5py leaves a file object open)."""
    import h5py

    class RemoteHDF5File(h5py.File):
        def close(self) -> None:
            fileobj = getattr(self, "_sciml_fileobj", None)
            try:
                super().close()
            finally:
                if fileobj is not None:
                    fileobj.close()

    return RemoteHDF5File


# ----------------------------------------------------------------------------------------------- download
@contextlib.contextmanager
def _local_errors(path: Path, doing: str) -> Iterator[None]:
    """An OSError of the local side (disk full, permission, a folder in the way) as one DataFormatError
    naming the local file."""
    try:
        yield
    except SciMLError:
        raise
    except OSError as err:
        raise DataFormatError(path, f"cannot {doing} ({describe_error(err)})") from err


@dataclass(frozen=True)
class Download:
    """What :func:`download` did: the local file, its SHA-256, its size, and whether it was already there."""

    path: Path
    sha256: str
    n_bytes: int
    reused: bool


def default_download_path(url: str) -> Path:
    """``<cache>/downloads/<scheme>/<host>/<path of the URL>``; the cache is ``$SCIML_CACHE`` or
    ``.cache/sciml``."""
    from sciml.datasets.generate import default_cache_dir

    parts = urllib.parse.urlsplit(url)
    pieces = [p for p in urllib.parse.unquote(parts.path).split("/") if p not in ("", ".", "..")]
    if not pieces:
        raise ConfigError(f"{url}: the URL names no file; pass the output path")
    host = re.sub(r"[^\w.\-]", "_", parts.netloc) or "_"
    return default_cache_dir() / "downloads" / parts.scheme.lower() / host / Path(*pieces)


def checksum_path(path: Path) -> Path:
    """The file beside ``path`` holding its SHA-256: ``<path>.sha256``."""
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(DOWNLOAD_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def recorded_sha256(path: Path) -> str | None:
    """The SHA-256 recorded in ``<path>.sha256``, or ``None`` when there is none (or it is unreadable)."""
    try:
        text = checksum_path(path).read_text(encoding="utf-8").split()
    except OSError:
        return None
    return text[0].lower() if text and re.fullmatch(r"[0-9a-fA-F]{64}", text[0]) else None


def _check_hex(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ConfigError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return value


def download(
    url: str,
    out: str | os.PathLike[str] | None = None,
    *,
    sha256: str | None = None,
    options: RemoteOptions | None = None,
    force: bool = False,
) -> Download:
    """Copy ``url`` to a local file, atomically, with its SHA-256 beside it; returns what was done.

    The bytes go to a temporary name in the target folder (``.<name>.<pid>-<random>.partial``), hashed
    on the way; when the copy is complete (as many bytes as the server announced) and its SHA-256 equals
    ``sha256`` (when given), it is fsynced and renamed to ``out``, and ``<out>.sha256`` is written. An
    existing ``out`` whose content matches its recorded checksum (and ``sha256``) is kept, unless
    ``force``.

    Args:
        url: a remote URL (``https://``, ``s3://``, ``hf://``, ...) or a ``file://`` URL / local path.
        out: the local file, or a folder to put it in (one that exists, or a path ending in ``/``;
            default :func:`default_download_path`).
        sha256: the expected SHA-256 (hex); a mismatch leaves nothing behind.
        options: file-system options (credentials); the block size is that of the reads.
        force: download even when a verified copy exists.

    Raises:
        DataFormatError: the URL cannot be read, the copy is short, or its checksum differs.
        ConfigError: a malformed ``sha256``, or a URL without a file name and no ``out``.
    """
    expected = _check_hex(sha256)
    source_name = url_name(url)
    target = Path(out) if out is not None else default_download_path(url)
    if target.is_dir() or str(out).endswith(("/", os.sep)):  # a folder: the URL's file name in it
        target = target / source_name
    if target.exists() and not force:
        recorded = recorded_sha256(target)
        if recorded is not None and expected in (None, recorded) and file_sha256(target) == recorded:
            logger.info("%s: verified copy already there (sha256 %s)", target, recorded)
            return Download(target, recorded, target.stat().st_size, reused=True)
    opts = options or RemoteOptions(block_size=DOWNLOAD_CHUNK_BYTES, cache_type="none")
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    digest = hashlib.sha256()
    n_bytes = 0
    try:
        with remote_errors(url, "open"):
            source = open_binary(url, opts)
        with source, _local_errors(target, "write the copy"):
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as sink:
                announced = getattr(source, "size", None)
                while True:
                    with remote_errors(url, "download"):
                        block = source.read(DOWNLOAD_CHUNK_BYTES)
                    if not block:
                        break
                    digest.update(block)
                    sink.write(block)
                    n_bytes += len(block)
                sink.flush()
                os.fsync(sink.fileno())
        if isinstance(announced, int) and n_bytes != announced:
            raise DataFormatError(url, "download ended early", expected=f"{announced} bytes", found=n_bytes)
        found = digest.hexdigest()
        if expected is not None and found != expected:
            raise DataFormatError(
                url, "checksum mismatch; nothing kept", expected=f"sha256 {expected}", found=found
            )
        with _local_errors(target, "write the copy"):
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # nothing to remove where the folder itself is missing
            tmp.unlink(missing_ok=True)
        raise
    from sciml.atomic import write_text_atomically

    with _local_errors(checksum_path(target), "write the checksum"):
        write_text_atomically(checksum_path(target), f"{found}  {target.name}\n")
    logger.info("downloaded %s to %s (%d bytes, sha256 %s)", url, target, n_bytes, found)
    return Download(target, found, n_bytes, reused=False)
