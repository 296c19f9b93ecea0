"""A one-node SLURM on this machine (.ci/slurm.sh) and the micro chain under it.

The chain is started with the test session (tests/conftest.py) when a SLURM test is selected, and its tests wait
for it. Most of its wall time is sleep: snakemake-executor-plugin-slurm waits 10 s longer after every status
check that finds no finished job (hard-coded in 2.8), so a 5 s job is seen after 12 s. Measured alone: 195 s wall
for 123 CPU-s on 2 cores; the tests before tests/test_slurm.py use that time."""

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.paths import REPO

ARGUMENTS = [
    "--workflow-profile",
    "workflow/profiles/slurm",
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--jobs",
    "2",
]
CHAIN_TARGET = "results/tables/supp_table1.tex"


def unavailable() -> str | None:
    """Why SLURM cannot run here, or None."""
    if shutil.which("slurmctld") is None or os.geteuid() != 0:
        return "needs root and Debian's slurm-wlm + munge"
    return None


@contextmanager
def running(state: Path):
    """The daemons, up for the block; jobs left behind are cancelled before they stop."""
    subprocess.run(["bash", str(REPO / ".ci" / "slurm.sh"), "start", str(state)], check=True, timeout=120)
    try:
        yield state
    finally:
        subprocess.run(["scancel", "--user", "root"], check=False)
        subprocess.run(["bash", str(REPO / ".ci" / "slurm.sh"), "stop", str(state)], check=False, timeout=60)


def snakemake_command(*targets: str, configs=("config/micro.yaml",)) -> tuple[list[str], dict]:
    """The command line and environment of a micro-configuration run under SLURM."""
    command = [sys.executable, "-m", "snakemake", *targets, "--configfile", *configs, *ARGUMENTS]
    return command, {**os.environ, "FLUX_SLURM_PARTITION": "debug"}


class MicroChain:
    """The micro configuration up to supplementary Table 1, submitted to SLURM in the background. Its output
    goes to a log file: a pipe nobody reads would block Snakemake once full."""

    def __init__(self, root: Path):
        self.root = root
        self.log = root / "slurm_chain.log"
        command, env = snakemake_command(CHAIN_TARGET)
        self.started = time.perf_counter()
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 1800) -> Path:
        """The workspace, once the chain has finished; an AssertionError with the log's tail if it failed."""
        returncode = self.process.wait(timeout=timeout)
        assert returncode == 0, self.log.read_text()[-6000:]
        print(f"micro to supp_table1 under SLURM, beside the other tests: {time.perf_counter() - self.started:.1f} s")
        return self.root

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)
