"""A stalled DDP rank ends the job with a message naming it, instead of hanging it (issue 13, item 7)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_trainer import tiny_config, write_config

ROOT = Path(__file__).parents[2]
LAUNCH = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]


def _worker_pid(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` among the children of ``launcher``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_stalled_rank_stops_the_job_with_a_message_naming_it(tiny_data, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(tiny_data, run, epochs=500, ddp_timeout_s=4)
    cfg = write_config(tmp_path / "stall.yaml", config)
    log = tmp_path / "log.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        launcher = subprocess.Popen(
            [*LAUNCH, "--master_port=29541", "-m", "sciml.train", str(cfg)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stalled = None
    try:
        metrics = run / "metrics.jsonl"
        deadline = time.time() + 180
        while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
            assert launcher.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert metrics.exists(), "the run never finished an epoch"
        stalled = _worker_pid(launcher.pid, rank=1)
        assert stalled is not None
        os.kill(stalled, signal.SIGSTOP)
        stopped_at = time.time()
        message = None
        while time.time() < stopped_at + 60 and message is None:
            for line in log.read_text().splitlines():
                if "a collective did not complete" in line:
                    message = line
            time.sleep(0.2)
        waited = time.time() - stopped_at
    finally:
        if stalled is not None:
            os.kill(stalled, signal.SIGKILL)
        try:
            launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
    assert message is not None, log.read_text()[-3000:]
    assert "ERROR" in message and "rank 0" in message and "rank 1 at epoch" in message
    assert "train.ddp_timeout_s = 4 s" in message
    assert waited < 4 + 30  # the timeout, the store queries and logging; not a hang
    assert launcher.returncode != 0
    assert "Traceback" not in log.read_text().split("a collective did not complete")[0]
