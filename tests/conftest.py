"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch

import sciml.bench


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Benchmark scripts run by tests set torch's thread count (one thread for their timings); put it back,
    or a later test comparing an in-process run with a subprocess (its own default threads) sees different
    reduction orders and bit-different weights."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """Import a benchmark script ``solvers/<name>.py`` by path: ``load_script("gp_hm")``
    (:func:`sciml.bench.load_script`, the importer ``python -m sciml.bench`` uses)."""
    return sciml.bench.load_script
