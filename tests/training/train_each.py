"""Train each run config given on the command line in turn (``sciml.train``), in one process.

Under ``torchrun`` this lets one multi-process job train several configs, so a test of many DDP cases starts
its processes once. The process group is joined by the first run and kept for the next ones (torchrun's
rendezvous store cannot be joined a second time), then left at the end. Exits with the first non-zero status.
"""

import sys

import sciml.train
from sciml.training.distributed import teardown

if __name__ == "__main__":
    sciml.train.teardown = lambda: None  # keep the group between runs; left once below
    try:
        for config in sys.argv[1:]:
            status = sciml.train.main([config])
            if status:
                sys.exit(status)
    finally:
        teardown()
