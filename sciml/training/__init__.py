"""The shared training loop: the Trainer, run configs, checkpoints, distributed set-up and reports.

``python -m sciml.train CONFIG`` is the command-line entry point; :class:`Trainer` is the loop itself.
"""

from sciml.training.config import RunConfig, load_config
from sciml.training.trainer import Trainer, TrainingDivergedError

__all__ = ["RunConfig", "Trainer", "TrainingDivergedError", "load_config"]
