"""Read a dataset over HTTP as lazily as from the disk, then make a checksummed local copy of it.

A tiny The Well file is served by a loopback HTTP server (``sciml.datasets.http_server``, which answers
Range requests as object stores and web servers do) and opened by its URL: a window of frames moves its
own bytes, not the file. ``download`` then writes a local copy with its SHA-256 beside it.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import sciml.datasets as sd
from sciml.datasets.http_server import LoopbackFileServer
from sciml.datasets.remote import download
from sciml.datasets.writers.the_well import TheWellWriter
from sciml.errors import DataFormatError

workdir = Path(os.environ.get("SCIML_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="sciml-example-"))
served = workdir / "served"
served.mkdir(exist_ok=True)

# 4 trajectories x 24 frames of vorticity and velocity on a 64 x 64 grid (random values), 4.5 MiB
rng = np.random.default_rng(0)
with TheWellWriter(
    served / "flow.hdf5",
    n_trajectories=4,
    times=np.arange(24) * 0.1,
    grid_shape=(64, 64),
    domain_lengths=(1.0, 1.0),
    viscosity=1e-3,
) as writer:
    writer.write(0, rng.standard_normal((4, 24, 64, 64)), rng.standard_normal((4, 24, 64, 64, 2)))

with LoopbackFileServer(served) as server:
    url = server.url("flow.hdf5")  # http://127.0.0.1:<port>/flow.hdf5
    remote = sd.open(url, block_size=64 * 2**10)  # any fsspec URL: https://, s3://, hf://, memory://...
    local = sd.open(served / "flow.hdf5")
    print(f"{remote.metadata.format} over HTTP: fields {list(remote.metadata.field_names)}")

    remote.read(0, slice(0, 1))  # the file's metadata now sits in the block cache
    before = server.bytes_sent
    window = remote.read(3, slice(10, 14))  # [4, 3, 64, 64]: 4 frames of trajectory 3
    moved = server.bytes_sent - before
    assert torch.equal(window, local.read(3, slice(10, 14)))
    window_bytes = window.numel() * 4
    file_bytes = (served / "flow.hdf5").stat().st_size
    print(
        f"a window of {window_bytes / 2**10:.0f} KiB moved {moved / 2**10:.0f} KiB "
        f"({moved / window_bytes:.2f}x) of a {file_bytes / 2**20:.1f} MiB file"
    )
    assert moved < file_bytes / 4

    try:
        sd.open(server.url("missing.hdf5"))
    except DataFormatError as err:
        print(f"error: {err}")

    copy = download(
        url, f"{workdir}/copies/", sha256=hashlib.sha256((served / "flow.hdf5").read_bytes()).hexdigest()
    )
    print(f"downloaded to copies/{copy.path.name}, sha256 {copy.sha256[:12]}..., verified")
    assert torch.equal(sd.open(copy.path).read(3, slice(10, 14)), window)
    remote.close()
    local.close()
