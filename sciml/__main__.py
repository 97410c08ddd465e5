"""``python -m sciml COMMAND ARGS...``: the same as the ``sciml`` command (see :mod:`sciml.cli`)."""

import sys

from sciml.cli import main

if __name__ == "__main__":
    sys.exit(main())
