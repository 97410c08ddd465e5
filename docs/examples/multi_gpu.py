"""Training under torchrun: one process per GPU with DistributedDataParallel, or one CPU process here.

With NPROC_PER_NODE=gpu on a machine with G GPUs this starts G processes (NCCL) that split each batch of
`data.batch_size` between them; by default it starts one process (world size 1: no process group), on the
CPU when there is no GPU, which is the same command on a smaller machine. The run is the quickstart at smoke
scale.

The commands it stands for:

    torchrun --standalone --nproc_per_node=gpu -m sciml.train quickstart
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv-endpoint=node0:29500 -m sciml.train quickstart
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

workdir = Path(os.environ.get("SCIML_EXAMPLE_DIR") or tempfile.mkdtemp(prefix="sciml-example-"))

# a dataset recipe small enough for seconds: the physics of the quickstart's data, on 16^2 up to t = 1
(workdir / "tiny.yaml").write_text(
    """name: tiny
solver: {resolution: 16, viscosity: 1.0e-3, forcing: fno, dt: 0.01, stepper: heun-cn}
output: {t_final: 1.0, record_every: 0.5}
n_trajectories: 8
batch_size: 8
"""
)

# processes on this machine: "gpu" (one per GPU) or a number; data.batch_size (4 here) must divide evenly
processes = os.environ.get("NPROC_PER_NODE", "1")
command = [
    *(sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"),
    *("-m", "sciml.train", "quickstart"),
    *(f"data.recipe={workdir / 'tiny.yaml'}", "train.epochs=1", "eval.resolutions=[]", "eval.plots=false"),
    *("--run-dir", str(workdir / "run")),
]
print("torchrun", " ".join(command[3:]))
environment = {**os.environ, "SCIML_CACHE": str(workdir / "cache")}  # rank 0 generates the data there
subprocess.run(command, env=environment, check=True)

report = json.loads((workdir / "run" / "report" / "metrics.json").read_text())
l2 = report["test"]["16"]["l2"]["mean"]
device = report["environment"]["device"]
print(f"trained on {device} with {processes} process(es) per node: test rel L2 {l2:.3f}")
assert 0 < l2 < 2
