"""SLURM submission: the exact sbatch arguments snakemake-executor-plugin-slurm builds from our rule resources
(with the plugin's own submit-string functions, so a plugin upgrade that changes them fails here), the
launchers, the site-settings check that runs before any submission, and the scheduler's job rate limit."""

from types import SimpleNamespace

import pytest
import yaml

# a hard dependency (pyproject.toml): imported, never skipped
from snakemake.cli import get_argument_parser
from snakemake.scheduling.job_scheduler import JobRateLimiter
from snakemake.settings.types import MaxJobsPerTimespan
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string
from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

from flux.cluster import check_site_settings, drop_default_job_rate_limit, job_resources, launcher_command, site_resources
from flux.errors import ConfigError
from tests.paths import REPO


class Resources(dict):
    """Snakemake's evaluated job resources: a mapping with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def evaluated(resources: dict, attempt: int = 1) -> Resources:
    return Resources({key: value(None, attempt) if callable(value) else value for key, value in resources.items()})


def sbatch(rule: str, settings: dict, threads: int) -> str:
    resources = evaluated(job_resources(settings, threads, mem_mb=4000, runtime=60))
    job = SimpleNamespace(name=rule, threads=threads, resources=resources, wildcards={}, is_group=lambda: False)
    validate_slurm_extra(job)
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "LOG",
        "comment_str": f"rule_{rule}",
        "account": "-A 'proj'",
        "partition": "-p 'gpu'",
        "workdir": "/work",
    }
    profile = SimpleNamespace(requeue=True, no_requeue=False, qos=None, reservation=None)
    return get_submit_command(job, params, settings=profile) + set_gres_string(job)


HEAD = "sbatch --parsable --job-name RUN --output LOG --export=ALL --comment rule_{} -A 'proj' -p 'gpu'"


def test_one_gpu_job():
    call = sbatch("evaluate", {"threads": 16, "mem_mb": 64000, "runtime": 480, "gpu": 1}, threads=16)
    assert call == HEAD.format("evaluate") + " -t 480 --mem 64000 --nodes=1 --requeue --cpus-per-task=16 -D /work --gres=gpu:1"


def test_eight_gpus_on_one_node():
    call = sbatch("train_finetune", {"threads": 64, "mem_mb": 480000, "runtime": 1440, "gpu": 8, "nodes": 1}, threads=64)
    assert call == (
        HEAD.format("train_finetune") + " -t 1440 --mem 480000 --nodes=1 --requeue --cpus-per-task=64 -D /work --gres=gpu:8"
    )


def test_two_nodes_of_eight_gpus_run_one_task_per_node():
    settings = {"threads": 64, "mem_mb": 480000, "runtime": 1440, "gpu": 8, "nodes": 2}
    call = sbatch("train_finetune", settings, threads=64)
    assert call == (
        HEAD.format("train_finetune")
        + " -t 1440 --mem 480000 --nodes=2 --requeue --ntasks=2 --cpus-per-task=64 --ntasks-per-node=1 --exclusive"
        + " -D /work --gres=gpu:8"
    )
    assert "--ntasks-per-gpu" not in call and "--gpus" not in call


def test_paper_config_resources_reach_sbatch():
    """config/paper.yaml's training resources: Flux-UMT on 4 nodes x 8 GPUs."""
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    settings = paper["resources"]["train_umt"]
    call = sbatch("train_umt", settings, threads=settings["threads"])
    assert "--nodes=4 " in call and "--ntasks=4 " in call and call.endswith("--gres=gpu:8")


def test_runtime_grows_with_the_attempt():
    resources = job_resources({"runtime": 90}, threads=1, mem_mb=1000, runtime=10)
    assert evaluated(resources, attempt=1)["runtime"] == 90 and evaluated(resources, attempt=3)["runtime"] == 270


def test_launchers():
    assert launcher_command("python", 0, 1, "py") == "py -m flux"
    assert launcher_command("torchrun", 8, 1, "py") == "py -m torch.distributed.run --standalone --nproc_per_node 8 -m flux"
    assert launcher_command("srun_torchrun", 8, 1, "py").startswith("py -m torch.distributed.run --standalone")  # one node
    multi = launcher_command("srun_torchrun", 8, 2, "py")
    assert multi.startswith("srun --ntasks-per-node=1 py -m torch.distributed.run --nnodes $SLURM_NNODES --nproc_per_node 8")
    assert "--rdzv_backend c10d --rdzv_endpoint $(scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1):29500" in multi
    with pytest.raises(ConfigError, match="training.launcher: 'mpirun'"):
        launcher_command("mpirun", 1, 1)


def test_missing_site_settings_are_named():
    assert check_site_settings({"slurm_partition": "gpu", "slurm_account": "proj"}, no_account=False) == []
    assert check_site_settings({"slurm_partition": "gpu"}, no_account=True) == []
    problems = check_site_settings({"slurm_partition": "$FLUX_SLURM_PARTITION", "slurm_account": "$FLUX_SLURM_ACCOUNT"}, False)
    assert len(problems) == 2 and "FLUX_SLURM_PARTITION" in problems[0] and "--slurm-no-account" in problems[1]


def test_site_settings_come_from_the_environment():
    assert site_resources({"FLUX_SLURM_PARTITION": "gpu", "FLUX_SLURM_ACCOUNT": ""}) == {"slurm_partition": "gpu"}
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "profile.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] >= 1 and profile["slurm-requeue"] is True


def test_only_snakemakes_default_job_rate_limit_is_dropped():
    """Snakemake's own default (its argument parser's, so that a new default fails here) is dropped; a limit given
    explicitly, no limit, or a scheduler without the attribute are left as they are."""
    default = get_argument_parser().parse_args([]).max_jobs_per_timespan
    scheduler = SimpleNamespace(job_rate_limiter=JobRateLimiter(default))
    assert drop_default_job_rate_limit(scheduler) is True
    assert scheduler.job_rate_limiter is None
    for explicit in ("10/1s", "100/1m", "1000/1s"):
        limiter = JobRateLimiter(MaxJobsPerTimespan.parse_choice(explicit))
        scheduler = SimpleNamespace(job_rate_limiter=limiter)
        assert drop_default_job_rate_limit(scheduler) is False
        assert scheduler.job_rate_limiter is limiter
    assert drop_default_job_rate_limit(SimpleNamespace(job_rate_limiter=None)) is False
    assert drop_default_job_rate_limit(object()) is False
