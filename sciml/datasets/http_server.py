"""A loopback HTTP file server that answers Range requests, for the tests and the loader benchmark.

Python's ``http.server.SimpleHTTPRequestHandler`` always sends whole files; fsspec's HTTP file system (and
so h5py reading through it) needs ``HEAD`` with a ``Content-Length`` and ``GET`` with ``Range: bytes=a-b``
answered by ``206 Partial Content``. :class:`LoopbackFileServer` serves one folder on ``127.0.0.1`` (a port
the system picks) from a background thread and counts the requests and the body bytes it sent, so a test
or a benchmark can measure how many bytes a read moved::

    with LoopbackFileServer(folder) as server:
        ds = sciml.datasets.open(server.url("data.hdf5"))
        ...
        server.bytes_sent

Files whose names are in ``forbidden`` answer ``403``; missing files ``404``. Nothing outside the folder is
served. Not meant for anything but loopback tests: one range per request, no caching headers.
"""

from __future__ import annotations

import http.server
import logging
import re
import threading
import urllib.parse
from collections.abc import Collection
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_COPY_BYTES = 1 << 20


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the files of ``server.root`` with single byte ranges; counts into ``server``."""

    server: _CountingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _file(self) -> Path | None:
        """The file the request names, or ``None`` (after answering 403/404) when it cannot be served."""
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        root = self.server.root
        candidate = (root / name).resolve()
        if root not in candidate.parents or not candidate.is_file():
            self._error(404)
            return None
        if candidate.name in self.server.forbidden:
            self._error(403)
            return None
        return candidate

    def _error(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.count(0)

    def do_HEAD(self) -> None:
        """Size and range support of a file, no body."""
        path = self._file()
        if path is None:
            return
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.server.count(0)

    def do_GET(self) -> None:
        """A whole file, or one byte range of it (``206``); an unsatisfiable range answers ``416``."""
        path = self._file()
        if path is None:
            return
        size = path.stat().st_size
        start, stop = 0, size  # stop exclusive
        header = self.headers.get("Range")
        if header:
            match = _RANGE.match(header.strip())
            if match is None or match.groups() == ("", ""):
                self._error(416)
                return
            first, last = match.groups()
            if first:
                start = int(first)
                stop = min(int(last) + 1, size) if last else size
            else:  # "bytes=-n": the last n bytes
                start = max(size - int(last), 0)
            if start >= size or start >= stop:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.server.count(0)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        sent = 0
        with open(path, "rb") as fh:
            fh.seek(start)
            while sent < stop - start:
                block = fh.read(min(_COPY_BYTES, stop - start - sent))
                if not block:
                    break
                self.wfile.write(block)
                sent += len(block)
        self.server.count(sent)


class _CountingServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that knows its folder and counts requests and body bytes."""

    daemon_threads = True

    def __init__(self, root: Path, forbidden: Collection[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.forbidden = frozenset(forbidden)
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0

    def count(self, n_bytes: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_sent += n_bytes


class LoopbackFileServer:
    """Serve ``root`` over HTTP on ``127.0.0.1`` from a background thread (a context manager).

    Args:
        root: the folder whose files are served.
        forbidden: file names answered with ``403 Forbidden``.

    Attributes:
        requests: requests answered so far (any status).
        bytes_sent: body bytes sent so far (headers not counted).
    """

    def __init__(self, root: str | Path, forbidden: Collection[str] = ()) -> None:
        self._server = _CountingServer(Path(root).resolve(), forbidden)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # close() waits for one poll: a test's teardown, not 0.5 s
            name="loopback-http",
            daemon=True,
        )
        self._thread.start()
        logger.debug("serving %s at %s", root, self.base_url)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}"

    def url(self, name: str) -> str:
        """The URL of the file ``name`` (relative to the root)."""
        return f"{self.base_url}/{urllib.parse.quote(name)}"

    @property
    def requests(self) -> int:
        """Requests answered so far."""
        with self._server.lock:
            return self._server.requests

    @property
    def bytes_sent(self) -> int:
        """Body bytes sent so far."""
        with self._server.lock:
            return self._server.bytes_sent

    def reset_counts(self) -> None:
        """Set the request and byte counters to zero."""
        with self._server.lock:
            self._server.requests = 0
            self._server.bytes_sent = 0

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackFileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
