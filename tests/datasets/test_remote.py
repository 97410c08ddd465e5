"""Remote data (issue 17): fsspec URLs in sciml.datasets.open and run configs, lazy reads, clear errors,
and ``sciml datasets download``; against fsspec's memory file system and a loopback HTTP server that
answers Range requests (sciml.datasets.http_server), started by the tests."""

from __future__ import annotations

import hashlib
import socket

import fsspec
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import sciml.datasets as sd
from sciml.datasets.__main__ import main as datasets_main
from sciml.datasets.http_server import LoopbackFileServer
from sciml.datasets.remote import RemoteOptions, download, recorded_sha256
from sciml.datasets.writers.the_well import TheWellWriter
from sciml.errors import ConfigError, DataFormatError
from sciml.training.config import DataConfig
from sciml.training.data import build_data, resolve_data_path

B, T, X, Y = 4, 12, 32, 24


def write_well(path, b=B, t=T):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((b, t, X, Y)).astype(np.float32)
    u = rng.standard_normal((b, t, X, Y, 2)).astype(np.float32)
    with TheWellWriter(
        path,
        n_trajectories=b,
        times=np.arange(t) * 0.1,
        grid_shape=(X, Y),
        domain_lengths=(1.0, 2.0),
        viscosity=1e-3,
    ) as writer:
        writer.write(0, w, u)
    return path


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "srv"
    folder.mkdir()
    write_well(folder / "flow.hdf5")
    np.save(folder / "array.npy", np.zeros((2, 3, 4, 4, 1), dtype=np.float32))
    (folder / "secret.hdf5").write_bytes((folder / "flow.hdf5").read_bytes())
    with LoopbackFileServer(folder, forbidden={"secret.hdf5"}) as server:
        yield server, folder


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_url_reads_the_same_frames_and_only_their_bytes(served):
    server, folder = served
    local = sd.open(folder / "flow.hdf5")
    remote = sd.open(server.url("flow.hdf5"), block_size=16 * 2**10)
    assert remote.metadata.format == "the_well" and remote.path == server.url("flow.hdf5")
    assert remote.metadata.field_names == local.metadata.field_names
    assert remote.metadata.viscosity == pytest.approx(1e-3) and remote.metadata.periodic == (True, True)
    remote.read(0, slice(0, 1))  # metadata and the chunk index are now in the block cache
    before = server.bytes_sent
    frames = remote.read(2, slice(5, 7))
    moved = server.bytes_sent - before
    assert torch.equal(frames, local.read(2, slice(5, 7)))
    window_bytes = 2 * 3 * X * Y * 4
    file_bytes = (folder / "flow.hdf5").stat().st_size
    assert moved <= window_bytes + 4 * 16 * 2**10 and moved < file_bytes / 4  # lazy: not the whole file
    fileobj = remote.handle()._sciml_fileobj  # the fsspec file h5py reads
    remote.close()
    assert fileobj.closed  # closed with the dataset (h5py leaves file objects open)


def test_memory_and_file_urls_read_like_the_local_path(tmp_path):
    path = write_well(tmp_path / "flow.hdf5")
    fs = fsspec.filesystem("memory")
    fs.pipe("/sciml-test/flow.hdf5", path.read_bytes())
    try:
        in_memory = sd.open("memory://sciml-test/flow.hdf5")
        via_file_url = sd.open(path.as_uri())
        local = sd.open(path)
        assert via_file_url.path == str(path)  # file:// is the local file
        for ds in (in_memory, via_file_url):
            assert ds.metadata.grid_shape == (X, Y)
            assert torch.equal(ds.read(3, slice(2, 9, 3)), local.read(3, slice(2, 9, 3)))
    finally:
        fs.rm("/sciml-test", recursive=True)


def test_dataloader_workers_reopen_the_url(served):
    server, folder = served
    remote = sd.TimeWindowDataset(sd.open(server.url("flow.hdf5")), t_in=2, t_out=1, stride=3)
    local = sd.TimeWindowDataset(sd.open(folder / "flow.hdf5"), t_in=2, t_out=1, stride=3)
    batches = list(DataLoader(remote, batch_size=3, num_workers=2))
    x = torch.cat([b["x"] for b in batches])
    assert x.shape[0] == len(local)
    assert torch.equal(x, torch.stack([local[i]["x"] for i in range(len(local))]))


def test_errors_name_the_url(served):
    server, _ = served
    missing = server.url("missing.hdf5")
    with pytest.raises(DataFormatError, match="HTTP 404") as err:
        sd.open(missing)
    assert missing in str(err.value)
    forbidden = server.url("secret.hdf5")
    with pytest.raises(DataFormatError, match="permission denied") as err:
        sd.open(forbidden)
    assert forbidden in str(err.value)
    refused = f"http://127.0.0.1:{closed_port()}/flow.hdf5"
    with pytest.raises(DataFormatError, match="cannot be reached") as err:
        sd.open(refused)
    assert refused in str(err.value)
    with pytest.raises(ConfigError, match="unknown URL scheme 'nosuchfs'"):
        sd.open("nosuchfs://bucket/flow.hdf5")
    with pytest.raises(DataFormatError, match=r"not streamed.*sciml datasets download") as err:
        sd.open(server.url("array.npy"))
    assert server.url("array.npy") in str(err.value)


def test_remote_options_are_checked():
    with pytest.raises(ConfigError, match="block_size"):
        RemoteOptions(block_size=0)
    with pytest.raises(ConfigError, match="cache_type 'lru'"):
        sd.open("memory://nothing/flow.hdf5", cache_type="lru")


def test_download_writes_a_verified_copy_atomically(served, tmp_path):
    server, folder = served
    source = (folder / "flow.hdf5").read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    out = tmp_path / "copies" / "flow.hdf5"
    done = download(server.url("flow.hdf5"), out, sha256=digest)
    assert done.path == out and not done.reused and out.read_bytes() == source
    assert recorded_sha256(out) == digest == done.sha256
    assert sorted(p.name for p in out.parent.iterdir()) == ["flow.hdf5", "flow.hdf5.sha256"]
    assert download(server.url("flow.hdf5"), out).reused  # verified copy kept
    assert torch.equal(sd.open(out).read(1), sd.open(folder / "flow.hdf5").read(1))

    wrong = tmp_path / "wrong" / "flow.hdf5"
    with pytest.raises(DataFormatError, match="checksum mismatch"):
        download(server.url("flow.hdf5"), wrong, sha256="0" * 64)
    assert list(wrong.parent.iterdir()) == []  # nothing half-written, nothing kept
    gone = (tmp_path / "gone.hdf5").as_uri()
    with pytest.raises(DataFormatError, match="not found") as err:
        download(gone, tmp_path / "gone_copy.hdf5")
    assert gone in str(err.value)
    blocked = tmp_path / "a_file" / "flow.hdf5"  # its folder would be a file: the local side fails
    blocked.parent.write_text("")
    with pytest.raises(DataFormatError, match="cannot write the copy") as err:
        download(server.url("flow.hdf5"), blocked)
    assert str(blocked) in str(err.value)


def test_download_command(served, tmp_path, capsys):
    server, folder = served
    out = tmp_path / "cli"  # not there yet: a trailing / makes it a folder
    assert datasets_main(["download", server.url("flow.hdf5"), "--out", f"{out}/"]) == 0
    digest = hashlib.sha256((folder / "flow.hdf5").read_bytes()).hexdigest()
    assert capsys.readouterr().out.split() == [digest, str(out / "flow.hdf5")]
    assert datasets_main(["download", server.url("missing.hdf5"), "--out", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["flow.hdf5", "flow.hdf5.sha256"]


def test_run_config_accepts_a_url(served):
    server, folder = served
    url = server.url("flow.hdf5")
    cfg = DataConfig(path=url, mode="window", t_in=2, t_out=1, stride=4, options={"block_size": 2**15})
    assert resolve_data_path(cfg) == url
    bundle = build_data(cfg)
    assert bundle.path == url and bundle.source.path == url
    local = build_data(DataConfig(path=str(folder / "flow.hdf5"), mode="window", t_in=2, t_out=1, stride=4))
    assert len(bundle.train) == len(local.train)
    assert torch.equal(bundle.train[0]["x"], local.train[0]["x"])
    assert torch.allclose(bundle.x_stats[0], local.x_stats[0])
    with pytest.raises(ConfigError, match=r"data\.options must be a mapping"):
        DataConfig(path=url, options=2**15)


def test_loader_benchmark_quick(load_script, tmp_path):
    bench = load_script("bench_loader")
    record = bench.main(["--quick", "--out", str(tmp_path / "loader.json")])
    assert (tmp_path / "loader.json").is_file() and (tmp_path / "loader.png").is_file()
    wps = record["windows_per_second"]
    assert set(wps) == {
        "raw_h5py",
        "raw_h5py_layout",
        "raw_h5py_read_direct",
        "dataset",
        "loader_w0",
        "loader_w2",
        "http_raw_h5py",
        "http_dataset",
    }
    assert all(v > 0 for v in wps.values())
    assert all(row["bytes_ratio"] >= 0.9 for row in record["bytes_moved"])  # a window's bytes at least
    text = bench.markdown(record)
    assert "windows/s" in text and "sent / window" in text
    assert "python solvers/bench_loader.py --quick" in text
