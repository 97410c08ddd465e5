"""mypy over ``sciml/`` against a checked-in baseline that may only shrink.

    python .ci/mypy_baseline.py            # fails on any error not in .ci/mypy-baseline.txt
    python .ci/mypy_baseline.py --update   # rewrites the baseline (only ever to remove entries)

An error is keyed by its file, error code and message, without the line number (so that editing a file
above an old error does not move it out of the baseline); a key may occur as often as the baseline counts it.
The check fails when mypy reports a key more often than the baseline, and says so when the baseline holds
entries that no longer occur (then run ``--update`` and commit the smaller baseline). ``--update`` refuses to
add entries: new code is typed clean. The messages are mypy's own, so CI pins the mypy version (.ci/run).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".ci" / "mypy-baseline.txt"
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[a-z-]+)\]$")


def current_errors() -> tuple[Counter[str], str]:
    """The keys of mypy's errors over sciml/ (configured in pyproject.toml) and mypy's raw output."""
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "sciml"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if run.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.exit(f"mypy failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    keys: Counter[str] = Counter()
    for line in run.stdout.splitlines():
        match = ERROR.match(line)
        if match:
            keys[f"{match['path']}: [{match['code']}] {match['message']}"] += 1
    return keys, run.stdout


def read_baseline() -> Counter[str]:
    """The baseline's keys with their counts (one line per occurrence)."""
    if not BASELINE.exists():
        return Counter()
    return Counter(line for line in BASELINE.read_text().splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    """Check (or with ``--update`` shrink) the baseline; 0 when no error is new."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite the baseline without fixed entries")
    args = parser.parse_args(argv)
    current, raw = current_errors()
    baseline = read_baseline()
    new = current - baseline
    fixed = baseline - current
    if new and not (args.update and not BASELINE.exists()):  # the first --update creates it
        print(f"mypy: {sum(new.values())} error(s) not in the baseline {BASELINE.name}:")
        for key in sorted(new):
            lines = [line for line in raw.splitlines() if key.split(": [", 1)[0] in line and "error:" in line]
            print(f"  {key}" + (f"  (e.g. {lines[0].split(': error', 1)[0]})" if lines else ""))
        return 1
    if args.update:
        BASELINE.write_text("".join(f"{key}\n" for key in sorted(current.elements())))
        print(f"mypy baseline: {sum(current.values())} entries ({sum(fixed.values())} fixed entries removed)")
        return 0
    if fixed:
        print(
            f"mypy: {sum(fixed.values())} baseline entries no longer occur; run "
            f"`python .ci/mypy_baseline.py --update` and commit the smaller baseline"
        )
    print(f"mypy: no new errors ({sum(current.values())} left in the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
