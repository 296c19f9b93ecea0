"""The micro configuration through a real one-node SLURM (.ci/slurm.sh: Debian's slurmctld, slurmd, munge):
jobs really run under SLURM (their job ids are in the provenance sidecars), and a training job killed with
`scancel` is retried by Snakemake and resumes from its latest state."""

import json
import os
import re
import subprocess
import time

import pytest

from tests import slurm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm_run(slurm_chain):
    """The micro chain's workspace; the chain itself started with the session (tests/conftest.py)."""
    if slurm_chain is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install slurm-wlm and munge and run as root (.ci/run)")
        pytest.skip(slurm.unavailable() or "the SLURM chain did not start")
    return slurm_chain.wait()


def test_the_micro_chain_runs_under_slurm(slurm_run):
    root = slurm_run
    job_ids = set()
    for run in ("teacher", "umt_s", "k710_s", "k400_s"):
        record = json.loads((root / "results" / "runs" / run / "final.json").read_text())["provenance"]
        assert record["slurm_job_id"], run  # SLURM_JOB_ID of the allocation that trained it
        job_ids.add(record["slurm_job_id"])
    metrics = json.loads((root / "results" / "metrics" / "k400_s" / "resolution_grid.json").read_text())
    job_ids.add(metrics["provenance"]["slurm_job_id"])
    assert len(job_ids) == 5 and None not in job_ids  # one allocation per job
    assert (root / "results" / "tables" / "supp_table1.tex").is_file()
    assert list((root / ".snakemake" / "slurm_logs").rglob("*.log"))


def test_missing_partition_stops_before_any_submission(slurm_run):
    env = {key: value for key, value in os.environ.items() if key != "FLUX_SLURM_PARTITION"}
    before = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True).stdout.split()
    command, _ = slurm.snakemake_command("results/tables/supp_table8.tex")
    result = subprocess.run(
        [*command, "--forcerun", "table"],
        cwd=slurm_run,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "FLUX_SLURM_PARTITION" in result.stdout + result.stderr
    after = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True).stdout.split()
    assert after == before


def test_a_cancelled_training_job_is_retried_and_resumes(slurm_run):
    """scancel the teacher's job once its first resume state exists: Snakemake resubmits it (profile `retries`)
    and the new job continues from that state."""
    root = slurm_run
    (root / "longer.yaml").write_text("training: {checkpoint_every: 2, stages: {teacher: {epochs: 12, batch_size: 4}}}\n")
    configs = ("config/micro.yaml", "longer.yaml")
    command, env = slurm.snakemake_command("results/runs/teacher/final.pt", configs=configs)
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = root / "results" / "state" / "teacher" / "latest.pt"
    cancelled = None
    deadline = time.monotonic() + 600
    while cancelled is None and time.monotonic() < deadline and process.poll() is None:
        if state.is_file():
            listing = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True).stdout
            found = re.search(r"^(\d+) rule_train_teacher", listing, flags=re.M)
            if found:
                cancelled = found.group(1)
                subprocess.run(["scancel", cancelled], check=True)
        time.sleep(0.5)
    output, _ = process.communicate(timeout=1200)
    assert cancelled, "the teacher job never wrote a resume state while running:\n" + output[-3000:]
    assert process.returncode == 0, output[-4000:]
    log = (root / "logs" / "train" / "teacher.log").read_text()
    assert re.search(r"teacher: resumed from step \d+", log), log[-2000:]
    summary = json.loads((root / "results" / "runs" / "teacher" / "final.json").read_text())
    assert summary["provenance"]["slurm_job_id"] not in (None, cancelled)
