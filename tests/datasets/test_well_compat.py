"""Compatibility with the real ``the_well`` package (issue 17), both ways, values equal.

* their ``WellDataset`` reads a file sciml's ``TheWellWriter`` wrote (a dataset folder ``data/train/``);
* sciml's reader reads a file written by their own writer, ``the_well.utils.dummy_data.write_dummy_data``
  (a constant field, a vector field, a time-varying scalar, attributes as plain strings), and gives the
  frames their ``WellDataset`` gives.

Skipped where ``the_well`` is not installed: it pins ``fsspec==2024.10.0``, so it is not a test dependency
of sciml; run it in an environment of its own (see the report of issue 17).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

the_well_datasets = pytest.importorskip("the_well.data.datasets")
dummy_data = pytest.importorskip("the_well.utils.dummy_data")

import sciml.datasets as sd  # noqa: E402
from sciml.datasets.writers.the_well import TheWellWriter  # noqa: E402

B, T, X, Y = 2, 6, 8, 10


def their_dataset(root, n_in=2, n_out=1):
    return the_well_datasets.WellDataset(
        path=str(root),
        well_split_name="train",
        n_steps_input=n_in,
        n_steps_output=n_out,
        use_normalization=False,
    )


def test_their_welldataset_reads_our_file(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((B, T, X, Y)).astype(np.float32)
    u = rng.standard_normal((B, T, X, Y, 2)).astype(np.float32)
    path = tmp_path / "data" / "train" / "ours.hdf5"
    with TheWellWriter(
        path,
        n_trajectories=B,
        times=np.arange(T) * 0.1,
        grid_shape=(X, Y),
        domain_lengths=(1.0, 1.0),
        viscosity=1e-3,
    ) as writer:
        writer.write(0, w, u)
    theirs = their_dataset(tmp_path)
    ours = sd.open(path)
    windows = T - 3 + 1
    assert len(theirs) == B * windows
    assert theirs.metadata.field_names[0] == ["vorticity"]
    assert theirs.metadata.field_names[1] == ["velocity_x", "velocity_y"]
    for index in range(len(theirs)):
        sample = theirs[index]
        i, t0 = divmod(index, windows)
        frames = ours.read(i, slice(t0, t0 + 3)).permute(0, 2, 3, 1)  # [T, X, Y, C], their layout
        assert torch.equal(sample["input_fields"], frames[:2])
        assert torch.equal(sample["output_fields"], frames[2:])
        assert torch.equal(frames[..., 0], torch.from_numpy(w[i, t0 : t0 + 3]))
        assert torch.equal(frames[..., 1:], torch.from_numpy(u[i, t0 : t0 + 3]))
    assert sample["constant_scalars"].tolist() == pytest.approx([1e-3])


def test_our_reader_reads_a_file_their_writer_made(tmp_path):
    path = tmp_path / "data" / "train" / "theirs.hdf5"
    path.parent.mkdir(parents=True)
    dummy_data.write_dummy_data(str(path))
    theirs = their_dataset(tmp_path, n_in=1, n_out=1)
    ours = sd.open(path)
    assert ours.metadata.format == "the_well"
    assert ours.metadata.field_names == ("constant_field", "field_x", "field_y")
    assert ours.metadata.periodic == (True, True)
    assert ours.metadata.parameters["a"] == pytest.approx(0.25)
    n_t = ours.metadata.n_times
    windows = n_t - 1
    for index in range(len(theirs)):
        sample = theirs[index]
        i, t0 = divmod(index, windows)
        frames = ours.read(i, slice(t0, t0 + 2)).permute(0, 2, 3, 1)  # [T, X, Y, C]
        assert torch.equal(sample["input_fields"], frames[:1, ..., 1:])
        assert torch.equal(sample["output_fields"], frames[1:, ..., 1:])
        assert torch.equal(sample["constant_fields"], frames[0, ..., :1])  # broadcast over time by sciml
        assert torch.equal(frames[0, ..., 0], frames[1, ..., 0])
