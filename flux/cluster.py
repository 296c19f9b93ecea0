"""Rule resources and process launchers, from config `resources.<rule>` and `training.launcher`.

The same rule runs on a laptop and on SLURM (snakemake-executor-plugin-slurm 2.x reads these resources):
- `mem_mb` (per node), `runtime` in minutes, multiplied by the attempt: a job killed at its time limit is
  retried (profile `retries`) with more time, and training resumes from its latest state;
- `cpus_per_task` (default: the rule's threads);
- GPUs as `gres: gpu:N`, i.e. per node (`gpu` would be the plugin's per-job `--gpus`), with `tasks_per_gpu: 0`
  so that the plugin adds no `--ntasks-per-gpu`;
- several nodes: one task per node (`mpi: srun`, `tasks` = nodes, `--ntasks-per-node=1 --exclusive`), so the
  job step runs the command once per node and `srun torchrun` starts one launcher on each, with a c10d
  rendezvous on the first node (../shared/reference/workflow.md §3.6).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from flux.errors import ConfigError

LAUNCHERS = ("python", "torchrun", "srun_torchrun")
RENDEZVOUS_PORT = 29500
SNAKEMAKE_DEFAULT_JOB_RATE = (100, 1)  # --max-jobs-per-timespan 100/1s: (jobs, seconds)
JOB_RATE_LIMIT_DROPPED = "Snakemake's default job rate limit ({}/{}s) is off (flux.cluster.drop_default_job_rate_limit)".format(
    *SNAKEMAKE_DEFAULT_JOB_RATE
)


@dataclass(frozen=True)
class RuntimeByAttempt:
    """Snakemake calls resource callables with the attempt number (1, 2, ...): minutes grow with it."""

    minutes: int

    def __call__(self, wildcards, attempt: int = 1) -> int:
        return self.minutes * attempt


def job_resources(settings: Mapping[str, int], threads: int, mem_mb: int, runtime: int) -> dict[str, object]:
    """Snakemake resources of a job from its config entry (`mem_mb`, `runtime` and the rest fall back to the
    rule's defaults)."""
    nodes = int(settings.get("nodes", 1))
    gpus = int(settings.get("gpu", 0))
    resources: dict[str, object] = {
        "mem_mb": int(settings.get("mem_mb", mem_mb)),
        "runtime": RuntimeByAttempt(int(settings.get("runtime", runtime))),
        "cpus_per_task": int(settings.get("cpus_per_task", threads)),
        "nodes": nodes,
    }
    if gpus:
        resources.update(gres=f"gpu:{gpus}", tasks_per_gpu=0)
    if nodes > 1:
        resources.update(mpi="srun", tasks=nodes, slurm_extra="--ntasks-per-node=1 --exclusive")
    return resources


def launcher_command(kind: str, gpus_per_node: int, nodes: int, python: str = sys.executable) -> str:
    """The command that starts `flux` for a training job: the interpreter; torchrun on one node (one process
    per GPU); or, on several nodes, `srun` starting one torchrun per node (the job has one task per node) that
    meet at a c10d rendezvous on the first node of the allocation."""
    if kind not in LAUNCHERS:
        raise ConfigError(f"training.launcher: '{kind}' is not one of {', '.join(LAUNCHERS)}")
    processes = max(1, gpus_per_node)
    if kind == "python":
        return f"{python} -m flux"
    if kind == "torchrun" or nodes == 1:
        return f"{python} -m torch.distributed.run --standalone --nproc_per_node {processes} -m flux"
    first_node = "$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1)"
    return (
        f"srun --ntasks-per-node=1 {python} -m torch.distributed.run --nnodes $SLURM_NNODES --nproc_per_node {processes} "
        f"--rdzv_id $SLURM_JOB_ID --rdzv_backend c10d --rdzv_endpoint {first_node}:{RENDEZVOUS_PORT} -m flux"
    )


SITE_VARIABLES = {"slurm_partition": "FLUX_SLURM_PARTITION", "slurm_account": "FLUX_SLURM_ACCOUNT"}


def site_resources(environment: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The partition and account given by FLUX_SLURM_PARTITION / FLUX_SLURM_ACCOUNT (set ones only, so that a
    site profile's `default-resources` still applies where they are not)."""
    return {resource: environment[variable] for resource, variable in SITE_VARIABLES.items() if environment.get(variable)}


def check_site_settings(default_resources: Mapping[str, object], no_account: bool) -> list[str]:
    """What is missing for a SLURM submission: an unset partition, or an account unless the cluster has none.
    A profile value still reading `$FLUX_SLURM_...` is an environment variable that was not set."""
    problems = []

    def unset(value: object) -> bool:
        return value is None or str(value).strip() in ("", "None") or str(value).startswith("$")

    if unset(default_resources.get("slurm_partition")):
        problems.append("the partition (export FLUX_SLURM_PARTITION=<partition>; `sinfo -s` lists them)")
    if not no_account and unset(default_resources.get("slurm_account")):
        problems.append(
            "the account (export FLUX_SLURM_ACCOUNT=<account>; `sacctmgr show assoc user=$USER`), "
            "or pass --slurm-no-account on a cluster without accounting"
        )
    return problems


def drop_default_job_rate_limit(scheduler: object) -> bool:
    """Run Snakemake's scheduler without its default job rate limit (100 submissions per second); True if dropped.

    With a limit, every scheduling pass arms a one-second timer that triggers one more pass, and every finished
    job adds one such chain that never ends (snakemake/snakemake#3744, #3804): after the embedded default's 254
    jobs the scheduler makes about 250 passes a second and takes a third of a core that the jobs need. Locally
    (2 cores) and under the SLURM profile (`jobs: 64`), 100 submissions a second is never the binding limit. A
    limit given explicitly (any other value) is kept; a Snakemake without this attribute is left as it is.
    """
    limiter = getattr(scheduler, "job_rate_limiter", None)
    if limiter is None or (limiter.max_jobs, limiter.timespan) != SNAKEMAKE_DEFAULT_JOB_RATE:
        return False
    scheduler.job_rate_limiter = None
    return True
