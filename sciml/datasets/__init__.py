"""Datasets: readers for the formats people already have, the generator, windows and normalization.

``sciml.datasets.open(path)`` detects the format of a file and returns a lazy dataset object.
"""

from sciml.datasets.base import PairDataset, TrajectoryDataset
from sciml.datasets.metadata import DatasetMetadata
from sciml.datasets.registry import available_formats, open_dataset, register_reader

open = open_dataset

__all__ = [
    "DatasetMetadata",
    "PairDataset",
    "TrajectoryDataset",
    "available_formats",
    "open",
    "open_dataset",
    "register_reader",
]
