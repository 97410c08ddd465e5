"""Datasets: readers for the formats people already have, the generator, windows and normalization.

``sciml.datasets.open(path)`` detects the format of a file (or a URL, or a zarr store) and returns a lazy
dataset object; ``write_netcdf`` and ``write_zarr`` write any dataset as netCDF-4 or zarr.
"""

from sciml.datasets.base import PairDataset, TrajectoryDataset
from sciml.datasets.in_memory import ArrayPairDataset, ArrayTrajectoryDataset
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.normalization import FieldNormalizer
from sciml.datasets.registry import available_formats, open_dataset, register_reader
from sciml.datasets.windows import InitialToFinalDataset, TimeWindowDataset, split_by_trajectory
from sciml.datasets.writers.xarray_formats import write_netcdf, write_zarr

open = open_dataset

_XARRAY_VIEWS = ("pairs_to_xarray", "trajectories_to_xarray")


def __getattr__(name: str) -> object:
    """The xarray views, imported on first use: xarray (and pandas) add about a second to every start."""
    if name in _XARRAY_VIEWS:
        from sciml.datasets import xarray_view

        return getattr(xarray_view, name)
    raise AttributeError(f"module 'sciml.datasets' has no attribute {name!r}")


__all__ = [
    "ArrayPairDataset",
    "ArrayTrajectoryDataset",
    "DatasetMetadata",
    "FieldNormalizer",
    "InitialToFinalDataset",
    "PairDataset",
    "TimeWindowDataset",
    "TrajectoryDataset",
    "available_formats",
    "open",
    "open_dataset",
    "pairs_to_xarray",
    "register_reader",
    "split_by_trajectory",
    "trajectories_to_xarray",
    "write_netcdf",
    "write_zarr",
]
