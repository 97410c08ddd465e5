"""Starting a run does not pay for what it does not use: xarray is imported only for the xarray views."""

import subprocess
import sys

import sciml.datasets as sd


def test_training_entry_point_does_not_import_xarray():
    code = "import sys, sciml.train; print('xarray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"


def test_xarray_views_still_load_from_the_package():
    from sciml.datasets import xarray_view

    assert sd.pairs_to_xarray is xarray_view.pairs_to_xarray
    assert sd.trajectories_to_xarray is xarray_view.trajectories_to_xarray
