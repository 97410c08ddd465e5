"""Fixtures shared by the training tests: the tiny dataset that ``test_trainer.py`` trains on."""

from test_trainer import tiny_data  # noqa: F401  (re-exported: a fixture for every module here)
