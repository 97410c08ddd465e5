"""Fixtures of the solver tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Small problems: one thread avoids oversubscription on shared CPUs (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
