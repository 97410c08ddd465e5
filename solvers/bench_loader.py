"""Window loader throughput (issue 17): sciml's dataset + DataLoader vs raw h5py slicing of the same bytes,
from a local file and from the same file over a loopback HTTP server; memory and bytes moved per window.

One The Well HDF5 file (sciml's writer: vorticity and the two velocity components, one frame per chunk)
is cut into time windows of ``t_in + t_out`` frames. Every variant reads the same windows in the same
shuffled order, interleaved round by round; ratios are paired per round (median):

* ``raw_h5py``: ``f["t0_fields/vorticity"][i, s:s+n]`` and ``f["t1_fields/velocity"][i, s:s+n]`` through
  h5py, nothing else (the bytes a window needs, no tensor, no checks);
* ``raw_h5py_layout``: the same, then the model's layout (velocity components moved to channels, one
  ``[T, C, X, Y]`` tensor, each field copied once into it), the least any loader must do with these bytes;
* ``raw_h5py_read_direct``: the same layout, HDF5 writing the vorticity straight into its slots of the
  ``[T, C, X, Y]`` array (``Dataset.read_direct`` with a destination selection) instead of our copy;
* ``dataset``: ``TimeWindowDataset(sciml.datasets.open(path))[k]`` (a finished ``{"x", "y"}`` sample:
  channels stacked time-major, NaN/inf checked, a tensor the caller owns);
* ``loader_w0`` / ``loader_w2``: the same through ``torch.utils.data.DataLoader`` (batch 8, 0 or 2
  workers, persistent);
* over HTTP (``http_*``): the same file served by ``sciml.datasets.http_server`` on 127.0.0.1, opened by
  URL (``raw`` through an fsspec file object with the same block cache, ``dataset`` through
  ``sciml.datasets.open``).

Memory: the peak resident-set increase over one pass over every window (workers 0), against one window's
bytes and the file's. Bytes moved: body bytes the server sent per window over a pass, divided by the
window's own bytes (1.0 is ideal), for several fsspec block sizes. Run ``python solvers/bench_loader.py``
(``--quick`` for the test suite).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import fsspec
import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

import sciml.datasets as sd
from sciml.bench.memory import PeakMemory
from sciml.bench.record import bar_chart, environment, output_path, run_script, write_record
from sciml.bench.render import met, num, para, provenance, table
from sciml.datasets.http_server import LoopbackFileServer
from sciml.datasets.remote import DEFAULT_BLOCK_SIZE, DEFAULT_CACHE_TYPE
from sciml.datasets.writers.the_well import TheWellWriter

logger = logging.getLogger("bench_loader")

TARGET_LOCAL_RATIO = 0.8
BATCH = 8


def sizes(quick: bool) -> dict[str, int]:
    """Trajectories, frames, grid side, window frames in/out, windows per round, rounds."""
    if quick:
        return {"b": 2, "t": 10, "n": 32, "t_in": 2, "t_out": 2, "per_round": 8, "rounds": 2}
    return {"b": 8, "t": 40, "n": 128, "t_in": 4, "t_out": 4, "per_round": 64, "rounds": 11}


def block_sizes(quick: bool) -> list[int]:
    """fsspec block sizes whose bytes per window are measured over HTTP."""
    return [64 * 2**10, DEFAULT_BLOCK_SIZE] if quick else [64 * 2**10, DEFAULT_BLOCK_SIZE, 2**20, 4 * 2**20]


def write_file(path: Path, b: int, t: int, n: int) -> Path:
    """A Well file of ``b`` trajectories of ``t`` frames on an ``n x n`` grid (random values, seed 0)."""
    rng = np.random.default_rng(0)
    with TheWellWriter(
        path,
        n_trajectories=b,
        times=np.arange(t) * 0.1,
        grid_shape=(n, n),
        domain_lengths=(1.0, 1.0),
        viscosity=1e-3,
    ) as writer:
        for i in range(b):
            w = rng.standard_normal((1, t, n, n), dtype=np.float32)
            u = rng.standard_normal((1, t, n, n, 2), dtype=np.float32)
            writer.write(i, w, u)
    return path


class RawWindows:
    """Raw h5py slicing of one window's frames of both fields (local path or an fsspec file object)."""

    def __init__(self, source: str | Path, span: int, windows_per_trajectory: int, block_size: int) -> None:
        if isinstance(source, str) and "://" in source:
            handle = fsspec.open(source, "rb", block_size=block_size, cache_type=DEFAULT_CACHE_TYPE).open()
            self.file = h5py.File(handle, "r")
        else:
            self.file = h5py.File(source, "r")
        self.w = self.file["t0_fields/vorticity"]
        self.u = self.file["t1_fields/velocity"]
        self.span = span
        self.per_trajectory = windows_per_trajectory

    def read(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        i, s = divmod(k, self.per_trajectory)
        return self.w[i, s : s + self.span], self.u[i, s : s + self.span]

    def read_as_tensor(self, k: int) -> torch.Tensor:
        """The same bytes in the model's layout: ``[T, C, X, Y]`` (velocity components moved to channels),
        each field copied once into one preallocated array, the least any loader must do with them."""
        w, u = self.read(k)
        out = np.empty((w.shape[0], 3, *w.shape[1:]), dtype=w.dtype)
        out[:, 0] = w
        out[:, 1:] = np.moveaxis(u, -1, 1)
        return torch.from_numpy(out)

    def read_direct_layout(self, k: int) -> torch.Tensor:
        """The model's layout with HDF5 writing the vorticity straight into its ``[T, 0, X, Y]`` slots
        (``read_direct`` with a destination selection: no copy of ours for that field), the velocity as in
        :meth:`read_as_tensor` (a per-component file selection is an element-wise gather in HDF5)."""
        i, s = divmod(k, self.per_trajectory)
        out = np.empty((self.span, 3, *self.w.shape[2:]), dtype=self.w.dtype)
        self.w.read_direct(out, np.s_[i, s : s + self.span], np.s_[:, 0])
        out[:, 1:] = np.moveaxis(self.u[i, s : s + self.span], -1, 1)
        return torch.from_numpy(out)


def pass_over(read: Callable[[int], object], order: list[int]) -> None:
    for k in order:
        read(k)


def loader_pass(loader: DataLoader) -> None:
    for _ in loader:
        pass


def measure_rounds(variants: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each variant's pass, interleaved, after one untimed warm-up pass each."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def bytes_per_window(
    url: str, server: LoopbackFileServer, order: list[int], t_in: int, t_out: int, block: int
) -> dict:
    """Body bytes and requests per window over one pass (opening included), and the windows per second."""
    server.reset_counts()
    start = time.perf_counter()
    windows = sd.TimeWindowDataset(sd.open(url, block_size=block), t_in, t_out)
    for k in order:
        windows[k]
    seconds = time.perf_counter() - start
    return {
        "block_size": block,
        "bytes_per_window": server.bytes_sent / len(order),
        "requests_per_window": server.requests / len(order),
        "windows_per_second": len(order) / seconds,
    }


def run(quick: bool, workdir: Path) -> dict:
    """Every measurement of the benchmark; returns the record (without the environment)."""
    s = sizes(quick)
    t_in, t_out = s["t_in"], s["t_out"]
    span = t_in + t_out
    path = write_file(workdir / "windows.hdf5", s["b"], s["t"], s["n"])
    window_bytes = span * 3 * s["n"] ** 2 * 4
    per_trajectory = s["t"] - span + 1
    n_windows = s["b"] * per_trajectory
    rng = np.random.default_rng(1)
    order = rng.permutation(n_windows)[: s["per_round"]].tolist()
    setup = {
        **{k: s[k] for k in ("b", "t", "n", "t_in", "t_out", "per_round", "rounds")},
        "channels": 3,
        "window_bytes": window_bytes,
        "file_bytes": path.stat().st_size,
        "windows": n_windows,
        "batch": BATCH,
        "block_size": DEFAULT_BLOCK_SIZE,
        "cache_type": DEFAULT_CACHE_TYPE,
    }
    with LoopbackFileServer(workdir) as server:
        url = server.url(path.name)
        local_windows = sd.TimeWindowDataset(sd.open(path), t_in, t_out)
        http_windows = sd.TimeWindowDataset(sd.open(url), t_in, t_out)
        raw_local = RawWindows(path, span, per_trajectory, DEFAULT_BLOCK_SIZE)
        raw_http = RawWindows(url, span, per_trajectory, DEFAULT_BLOCK_SIZE)
        subset = Subset(local_windows, order)
        loader_w0 = DataLoader(subset, batch_size=BATCH)
        loader_w2 = DataLoader(subset, batch_size=BATCH, num_workers=2, persistent_workers=True)
        variants = {
            "raw_h5py": lambda: pass_over(raw_local.read, order),
            "raw_h5py_layout": lambda: pass_over(raw_local.read_as_tensor, order),
            "raw_h5py_read_direct": lambda: pass_over(raw_local.read_direct_layout, order),
            "dataset": lambda: pass_over(local_windows.__getitem__, order),
            "loader_w0": lambda: loader_pass(loader_w0),
            "loader_w2": lambda: loader_pass(loader_w2),
            "http_raw_h5py": lambda: pass_over(raw_http.read, order),
            "http_dataset": lambda: pass_over(http_windows.__getitem__, order),
        }
        seconds = measure_rounds(variants, s["rounds"])
        full_order = list(range(n_windows))
        with PeakMemory("cpu") as local_memory:
            pass_over(sd.TimeWindowDataset(sd.open(path), t_in, t_out).__getitem__, full_order)
        with PeakMemory("cpu") as http_memory:
            pass_over(sd.TimeWindowDataset(sd.open(url), t_in, t_out).__getitem__, full_order)
        moved = [bytes_per_window(url, server, order, t_in, t_out, block) for block in block_sizes(quick)]
    windows_per_second = {name: len(order) / statistics.median(v) for name, v in seconds.items()}

    def paired(name: str, reference: str) -> float:
        return statistics.median(r / t for t, r in zip(seconds[name], seconds[reference], strict=True))

    ratios = {
        "raw_layout_to_raw": paired("raw_h5py_layout", "raw_h5py"),
        "raw_read_direct_to_raw": paired("raw_h5py_read_direct", "raw_h5py"),
        "dataset_to_raw": paired("dataset", "raw_h5py"),
        "dataset_to_raw_layout": paired("dataset", "raw_h5py_layout"),
        "loader_w0_to_raw_layout": paired("loader_w0", "raw_h5py_layout"),
        "loader_w0_to_raw": paired("loader_w0", "raw_h5py"),
        "loader_w2_to_raw": paired("loader_w2", "raw_h5py"),
        "http_dataset_to_http_raw": paired("http_dataset", "http_raw_h5py"),
        "http_dataset_to_local_dataset": paired("http_dataset", "dataset"),
    }
    for row in moved:
        row["bytes_ratio"] = row["bytes_per_window"] / window_bytes
    return {
        "setup": setup,
        "seconds_per_pass": seconds,
        "windows_per_second": windows_per_second,
        "ratios": ratios,
        "memory_mb": {
            "local_increase": local_memory.increase_mb,
            "http_increase": http_memory.increase_mb,
            "window": window_bytes / 2**20,
            "file": setup["file_bytes"] / 2**20,
            "method": local_memory.method,
        },
        "bytes_moved": moved,
        "target": f"local: dataset + DataLoader >= {TARGET_LOCAL_RATIO}x raw h5py windows/s",
        "target_met": ratios["loader_w0_to_raw"] >= TARGET_LOCAL_RATIO,
    }


def markdown(record: dict) -> str:
    """The record as BENCHMARKS.md tables: windows/s and ratios, memory, bytes moved per window over HTTP."""
    s, wps, r, mem = record["setup"], record["windows_per_second"], record["ratios"], record["memory_mb"]
    text = (
        f"A The Well file of {s['b']} trajectories x {s['t']} frames x 3 channels on {s['n']}² (float32, "
        f"one frame per chunk, {s['file_bytes'] / 2**20:.0f} MiB), windows of {s['t_in']} + {s['t_out']} "
        f"frames ({s['window_bytes'] / 2**20:.2f} MiB each); {s['per_round']} windows in one shuffled order "
        f"per pass, {s['rounds']} interleaved rounds, ratios paired round by round (median). HTTP: the same "
        f"file from a loopback server (127.0.0.1), fsspec `{s['cache_type']}` cache of "
        f"{s['block_size'] // 2**10} KiB blocks."
    )
    rows = [
        ["raw h5py slicing (local)", num(wps["raw_h5py"], 0), "1 (reference)"],
        [
            "raw h5py + the model's layout (`[T, C, X, Y]` tensor)",
            num(wps["raw_h5py_layout"], 0),
            num(r["raw_layout_to_raw"]),
        ],
        [
            "raw h5py `read_direct` of the vorticity into its `[T, C, X, Y]` slots (HDF5 scatters)",
            num(wps["raw_h5py_read_direct"], 0),
            num(r["raw_read_direct_to_raw"]),
        ],
        ["sciml dataset, no DataLoader", num(wps["dataset"], 0), num(r["dataset_to_raw"])],
        [
            f"sciml dataset + DataLoader, 0 workers, batch {s['batch']}",
            num(wps["loader_w0"], 0),
            num(r["loader_w0_to_raw"], bold=True),
        ],
        [
            f"sciml dataset + DataLoader, 2 workers, batch {s['batch']}",
            num(wps["loader_w2"], 0),
            num(r["loader_w2_to_raw"]),
        ],
        ["raw h5py over HTTP (fsspec file)", num(wps["http_raw_h5py"], 0), "-"],
        [
            "sciml dataset over HTTP (URL)",
            num(wps["http_dataset"], 0),
            f"{num(r['http_dataset_to_http_raw'])} of raw over HTTP, "
            f"{num(r['http_dataset_to_local_dataset'])} of local",
        ],
    ]
    memory = (
        f"Peak memory over one pass over all {s['windows']} windows (workers 0; {mem['method']}): "
        f"+{mem['local_increase']:.1f} MiB local, +{mem['http_increase']:.1f} MiB over HTTP, for windows of "
        f"{mem['window']:.2f} MiB in a file of {mem['file']:.0f} MiB."
    )
    moved = [
        [
            f"{row['block_size'] // 2**10} KiB",
            num(row["bytes_per_window"] / 2**20, 2),
            num(row["bytes_ratio"], bold=True),
            num(row["requests_per_window"], 1),
            num(row["windows_per_second"], 0),
        ]
        for row in record["bytes_moved"]
    ]
    return "\n".join(
        [
            provenance(record),
            "",
            para(text),
            "",
            table(["reader", "windows/s (median)", "ratio to raw h5py (paired)"], rows),
            "",
            para(
                f"Target (local, DataLoader 0 workers >= {TARGET_LOCAL_RATIO}x raw h5py): "
                f"{met(record['target_met'])}. Against raw h5py + the model's layout: dataset "
                f"{num(r['dataset_to_raw_layout'])}x, DataLoader 0 workers "
                f"{num(r['loader_w0_to_raw_layout'])}x."
            ),
            "",
            para(memory),
            "",
            "Bytes the server sent per window over one pass (opening included), against the window's bytes:",
            "",
            table(
                ["block size", "MiB per window", "sent / window", "requests per window", "windows/s"], moved
            ),
        ]
    )


def plot(record: dict, path: str | Path) -> Path:
    """Windows per second of each reader (PNG)."""
    wps = record["windows_per_second"]
    return bar_chart(path, list(wps), list(wps.values()), "Same windows, same order", "windows per second")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """``--quick`` (the test suite's size), ``--out`` (the JSON record)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="JSON record (default solvers/results[/quick]/loader.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, log it, write the JSON and the PNG; returns the record."""
    args = parse_args(argv)
    out = output_path(args.out, "loader.json", args.quick)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("fsspec").setLevel(logging.WARNING)  # a line per block fetched otherwise
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        measured = run(args.quick, Path(tmp))
    record = {
        "benchmark": "loader",
        "command": "python solvers/bench_loader.py" + (" --quick" if args.quick else ""),
        **environment("cpu"),
        **measured,
    }
    logger.info("windows/s: %s", {k: round(v) for k, v in record["windows_per_second"].items()})
    logger.info("ratios: %s", {k: round(v, 3) for k, v in record["ratios"].items()})
    write_record(out, record)
    plot(record, out.with_suffix(".png"))
    return record


if __name__ == "__main__":
    sys.exit(run_script(main))
