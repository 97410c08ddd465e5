"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

import sciml.bench


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """Import a benchmark script ``solvers/<name>.py`` by path: ``load_script("gp_hm")``
    (:func:`sciml.bench.load_script`, the importer ``python -m sciml.bench`` uses)."""
    return sciml.bench.load_script
