"""Lazy xarray views: values equal the data, selections read only what they need, netCDF round trip."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sciml.datasets import (
    ArrayPairDataset,
    ArrayTrajectoryDataset,
    DatasetMetadata,
    pairs_to_xarray,
    trajectories_to_xarray,
)

N, T, NX, NY = 3, 5, 4, 6
FIELDS = ("vorticity", "velocity_x", "velocity_y")


class CountingTrajectories(ArrayTrajectoryDataset):
    """Records every ``(trajectory, frame slice)`` read."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, slice]] = []

    def _read(self, index: int, times: slice) -> np.ndarray:
        self.calls.append((index, times))
        return super()._read(index, times)

    def frames_read(self) -> set[tuple[int, int]]:
        """Every (trajectory, frame) read so far."""
        return {(i, t) for i, s in self.calls for t in range(*s.indices(self.metadata.n_times))}


class CountingPairs(ArrayPairDataset):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[int] = []

    def _read_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(index)
        return super()._read_pair(index)


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((N, T, len(FIELDS), NX, NY))


@pytest.fixture
def ds(data) -> CountingTrajectories:
    return CountingTrajectories(
        data,
        field_names=FIELDS,
        times=np.linspace(0.0, 2.0, T),
        coords={"x": np.linspace(0, 1, NX, endpoint=False), "y": np.linspace(0, 2, NY, endpoint=False)},
        periodic=(True, False),
        domain_lengths=(1.0, 2.0),
        viscosity=1e-3,
        parameters={"reynolds": 1000.0, "forcing": "kolmogorov", "adaptive": True, "seed": 7},
    )


def test_view_has_one_variable_per_channel_with_the_data(ds, data) -> None:
    view = trajectories_to_xarray(ds)
    assert list(view.data_vars) == list(FIELDS)
    for c, name in enumerate(FIELDS):
        assert view[name].dims == ("sample", "time", "x", "y")
        assert view[name].dtype == np.float64
        np.testing.assert_array_equal(view[name].values, data[:, :, c])
        assert view[name].attrs["field_name"] == name
    np.testing.assert_allclose(view["time"].values, np.linspace(0.0, 2.0, T))
    np.testing.assert_allclose(view["y"].values, np.linspace(0, 2, NY, endpoint=False))
    assert view["sample"].values.tolist() == list(range(N))
    assert view.attrs["format"] == "memory" and view.attrs["path"] == "<memory>"
    assert view.attrs["periodic"].tolist() == [1, 0]
    assert view.attrs["viscosity"] == 1e-3
    assert view.attrs["param_forcing"] == "kolmogorov" and view.attrs["param_adaptive"] == 1
    # the dataset method gives the same view
    xr.testing.assert_identical(ds.to_xarray(), view)


def test_nothing_is_read_until_values_are_needed(ds, data) -> None:
    view = trajectories_to_xarray(ds)
    selection = view.isel(sample=1, time=slice(0, 2))
    repr(view), repr(selection)
    assert ds.calls == []
    loaded = selection.load()
    assert ds.frames_read() == {(1, 0), (1, 1)}
    assert len(ds.calls) == 1  # the three variables share one read
    np.testing.assert_array_equal(loaded["velocity_x"].values, data[1, 0:2, 1])


def test_selections_read_only_the_needed_trajectories_and_frames(ds, data) -> None:
    view = trajectories_to_xarray(ds, cache_bytes=0)
    sel = view["velocity_y"].isel(sample=[2, 0], time=[3, 1, 3], x=slice(None, None, -2), y=[5, 0])
    values = sel.values
    expected = data[[2, 0]][:, [3, 1, 3], 2][:, :, ::-2][..., [5, 0]]
    np.testing.assert_array_equal(values, expected)
    assert ds.frames_read() == {(2, 1), (2, 3), (0, 1), (0, 3)}
    ds.calls.clear()
    point = view["vorticity"].isel(sample=-1, time=-1, x=1, y=2).values
    assert point == data[-1, -1, 0, 1, 2]
    assert ds.frames_read() == {(N - 1, T - 1)}
    # label-based selection along the time coordinate
    ds.calls.clear()
    by_time = view["vorticity"].sel(time=1.0).isel(sample=0).values
    np.testing.assert_array_equal(by_time, data[0, 2, 0])
    assert ds.frames_read() == {(0, 2)}
    # empty selections read nothing
    ds.calls.clear()
    assert view["vorticity"].isel(sample=slice(0, 0)).values.shape == (0, T, NX, NY)
    assert ds.calls == []


def test_netcdf_round_trip(ds, data, tmp_path) -> None:
    view = trajectories_to_xarray(ds)
    path = tmp_path / "view.nc"
    view.to_netcdf(path)
    with xr.open_dataset(path) as back:
        for c, name in enumerate(FIELDS):
            np.testing.assert_array_equal(back[name].values, data[:, :, c])
        np.testing.assert_allclose(back["time"].values, view["time"].values)
        np.testing.assert_allclose(back["x"].values, view["x"].values)
        assert back.attrs["periodic"].tolist() == [1, 0]
        np.testing.assert_allclose(back.attrs["domain_lengths"], [1.0, 2.0])
        assert back.attrs["param_seed"] == 7
        assert back.attrs["format"] == "memory"
    # a selection of the view can be written too
    view.isel(sample=[0, 2], time=slice(1, None)).to_netcdf(tmp_path / "part.nc")
    with xr.open_dataset(tmp_path / "part.nc") as part:
        np.testing.assert_array_equal(part["velocity_y"].values, data[[0, 2], 1:, 2])


def test_default_metadata_and_awkward_names() -> None:
    data = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
    meta = DatasetMetadata(
        path="<memory>",
        format="memory",
        field_names=("x", "a/b"),  # clashes with a dimension name; holds a slash
        spatial_dims=("x",),
        grid_shape=(4,),
        n_trajectories=2,
        n_times=3,
    )
    view = trajectories_to_xarray(ArrayTrajectoryDataset(data, meta))
    assert list(view.data_vars) == ["x_field", "a_b"]
    assert view["x_field"].attrs["field_name"] == "x"
    assert "time" not in view.coords  # unknown times: no coordinate
    assert view["a_b"].dtype == np.float32
    np.testing.assert_array_equal(view["a_b"].values, data[:, :, 1])


def test_pairs_view_is_lazy_and_round_trips(tmp_path) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1, NX, NY)).astype(np.float32)
    y = rng.standard_normal((4, 2, 2 * NX, NY)).astype(np.float32)
    pairs = CountingPairs(x, y)
    view = pairs_to_xarray(pairs)
    assert pairs.calls == []
    assert list(view.data_vars) == ["x_x0", "y_y0", "y_y1"]
    assert view["x_x0"].dims == ("sample", "x", "y")
    assert view["y_y1"].dims == ("sample", "x_out", "y")  # output grid is finer along x
    np.testing.assert_array_equal(view["y_y1"].isel(sample=2).values, y[2, 1])
    assert pairs.calls == [2]
    np.testing.assert_array_equal(view["x_x0"].values, x[:, 0])
    path = tmp_path / "pairs.nc"
    pairs.to_xarray().to_netcdf(path)
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["y_y0"].values, y[:, 0])
        np.testing.assert_array_equal(back["x_x0"].values, x[:, 0])
