# Shared definitions: the typed configuration, path helpers, resources and job specs.
import functools
import json
import os
import re
import sys

from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from flux import forkserver
from flux.config import build_config
from flux.cluster import (
    JOB_RATE_LIMIT_DROPPED,
    check_site_settings,
    drop_default_job_rate_limit,
    job_resources,
    launcher_command,
    site_resources,
)
from flux.errors import ConfigError
from flux.jobs import figure_inputs, job_spec_json
from flux.tables.job_spec import table_job
from flux.train.runs import STAGES

try:
    FLUX = build_config(config)
except ConfigError as error:
    raise WorkflowError(f"configuration error: {error}") from None
for missing in FLUX.missing_files():  # files a job needs later: said now, not when that job starts
    print(f"flux: {missing}", file=sys.stderr)

# Jobs run with the interpreter that runs Snakemake (whether or not its environment is activated), except
# under `--sdm conda`, where each rule's environment (workflow/envs/flux.yaml) provides `python`.
USES_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
if USES_CONDA:
    FLUX_CLI = "python -m flux"
else:
    FLUX_CLI = f"{sys.executable} -m flux"
LOGS = str(FLUX.logs_dir)
RESULTS = str(FLUX.results_dir)
BENCHMARKS = str(FLUX.results_dir / "benchmarks")


def alternation(names):
    """Regex matching exactly these names (none: a pattern that never matches)."""
    return "|".join(re.escape(name) for name in names) or "(?!x)x"


def ready_marker(dataset):
    return str(FLUX.ready_marker(dataset))


def manifest(dataset):
    return str(FLUX.manifest_path(dataset))


def index_report(dataset):
    return str(FLUX.index_report_path(dataset))


def spec(verb, target=None):
    """A params function: the job spec of `verb` for `target` (default: the `dataset` wildcard)."""

    def build(wildcards):
        return job_spec_json(FLUX, verb, target or wildcards.get("dataset") or wildcards.get("run") or wildcards.get("name"))

    return build


def threads_for(rule_name):
    return FLUX.resources_for(rule_name).get("threads", 1)


def resource(rule_name, key, fallback):
    return FLUX.resources_for(rule_name).get(key, fallback)


def derived_source_markers(wildcards):
    derived = FLUX.datasets[wildcards.dataset].derived
    return [ready_marker(source) for source in derived.sources.values()]


def index_inputs(wildcards):
    """A dataset's ready marker; for a derived dataset (Kinetics-710), whose media are its sources', also
    the sources' manifests, so that their probes are reused instead of repeated."""
    inputs = [ready_marker(wildcards.dataset)]
    derived = FLUX.datasets[wildcards.dataset].derived
    if derived is not None:
        inputs += [manifest(source) for source in derived.sources.values()]
    return inputs


def annotations_edited(wildcards):
    """Whether the dataset's annotation files changed since its fetch (flux.data.registry.annotations_since_fetch):
    an edited label list or a local dataset's new annotations re-index it."""
    from flux.data.registry import annotations_since_fetch

    dataset = wildcards.dataset
    return annotations_since_fetch(FLUX.datasets[dataset], FLUX.dataset_dir(dataset), FLUX.ready_marker(dataset))


def all_manifests():
    return [manifest(dataset) for dataset in FLUX.used_datasets()]


def all_tables():
    """The claims table first (the document opens with it), then the configuration's tables."""
    return [str(FLUX.table_path(table)) for table in ("claims", *FLUX.tables)]


def run_checkpoint(run):
    return str(FLUX.checkpoint_path(run))


# A training run's inputs, one named input function each (so that `consider-ancient` can name them; it cannot see
# inside an `unpack`ed mapping): its datasets, its parent's weights, the teacher (Flux-UMT; Flux-CLIP takes its
# text tower), the Kinetics-710 head map, and the external teacher weights. Checkpoints are plain inputs, so a
# retrained parent retrains its children in the same invocation: Snakemake 9 does not propagate a rerun through
# an `ancient` input (a job below one that must run is masked from its own checks, then reached only through
# non-ancient files). Only the external teacher weights are `ancient`: a `dvc pull` must not re-import them and
# so retrain every student.
def train_manifests(wildcards):
    return [manifest(dataset) for dataset in FLUX.runs[wildcards.run].datasets]


def train_parent(wildcards):
    parent = FLUX.runs[wildcards.run].parent
    return [run_checkpoint(parent)] if parent else []


def train_teacher(wildcards):
    return [run_checkpoint("teacher")] if FLUX.runs[wildcards.run].stage in ("umt", "clip") else []


def train_head_map(wildcards):
    head_map = FLUX.runs[wildcards.run].head_map
    return [ready_marker(head_map)] if head_map else []


def teacher_weights(wildcards):
    if FLUX.runs[wildcards.run].stage == "teacher" and FLUX.teacher.weights:
        return [ancient(str(FLUX.teacher.weights))]
    return []


def text_encoder(wildcards):
    """The pretrained text encoder (`teacher.text_encoder`), for Flux-CLIP runs (ancient, as the teacher weights)."""
    if FLUX.runs[wildcards.run].stage == "clip" and FLUX.teacher.text_encoder:
        return [ancient(str(FLUX.teacher.text_encoder))]
    return []


def train_llm(wildcards):
    """The chat stage's frozen LLM: the tiny one the pipeline trains, or the configured folder (ancient, as the
    teacher weights: a `dvc pull` must not retrain the projectors)."""
    if FLUX.runs[wildcards.run].stage != "chat":
        return []
    return [ancient(str(FLUX.chat.llm))] if FLUX.chat.llm else [str(FLUX.tiny_llm_path)]


def llm_manifests(wildcards):
    from flux.jobs import chat_datasets

    return [manifest(dataset) for dataset in chat_datasets(FLUX)]


def train_launcher(rule_name):
    """How training jobs start their processes (config `training.launcher`, flux.cluster.launcher_command)."""
    python = "python" if FLUX_CLI.startswith("python ") else sys.executable
    settings = FLUX.resources_for(rule_name)
    return launcher_command(FLUX.training.launcher, settings.get("gpu", 0), settings.get("nodes", 1), python)


def rule_resources(rule_name, mem_mb, runtime):
    """A rule's resources from config `resources` (flux.cluster.job_resources: SLURM-ready, runtime by attempt)."""
    return {**job_resources(FLUX.resources_for(rule_name), threads_for(rule_name), mem_mb, runtime), **site_resources()}


def all_checkpoints():
    return [run_checkpoint(run) for run in FLUX.selected_runs]


def evaluate_inputs(wildcards):
    """The checkpoint and the manifests of the datasets a protocol evaluates on."""
    from flux.jobs import evaluation_roles

    protocol = FLUX.table_document["protocols"][wildcards.protocol]
    roles = evaluation_roles(FLUX, wildcards.run, protocol)
    inputs = {
        "checkpoint": run_checkpoint(wildcards.run),
        "manifests": [manifest(FLUX.roles[role]) for role in roles],
    }
    if protocol["task"] != "classification" and FLUX.teacher.text_encoder:
        inputs["text_encoder"] = ancient(str(FLUX.teacher.text_encoder))
    return inputs


def import_inputs(wildcards):
    """The manifest of the dataset whose classes the classifier's rows are (the import checks the count and
    records the names), and the Kinetics-710 head map when the rows are cut to them."""
    entry = FLUX.external[wildcards.name]
    inputs = {"labels": manifest(FLUX.roles[entry.role])}
    if entry.head_map:
        inputs["head_map"] = ready_marker(FLUX.roles[entry.head_map])
    return inputs


def evaluate_spec(wildcards):
    return job_spec_json(FLUX, "evaluate", f"{wildcards.run}/{wildcards.protocol}")


@functools.cache
def table_spec_json(table):
    """Built once per table: both its inputs and its params come from it."""
    return job_spec_json(FLUX, "table", table)


def table_spec_param(wildcards):
    return table_spec_json(wildcards.table)


def table_inputs(wildcards):
    """The files a table's job spec names (flux.tables.job_spec: `inputs()` of each kind of table)."""
    return table_job(json.loads(table_spec_json(wildcards.table))).inputs()


# Tables a target may name: the claims table, the configuration's (`tables`), the recipe table, the released checkpoints'.
TABLES = ["claims", *FLUX.tables, "recipe", "checkpoints"]
FIGURES = list(FLUX.figures)


def figure_path(name):
    return str(FLUX.results_dir / "figures" / f"{name}.png")


FORK_SERVERS = []  # the one flux.forkserver of a local run, started by onstart, stopped by onsuccess / onerror


def start_fork_server():
    """Local runs of the configuration that asks for it: jobs fork from a server that has imported their modules
    (flux.forkserver); `python -m flux` finds it through FLUX_FORK_SERVER, which the jobs inherit."""
    plugin = workflow.executor_plugin
    reason = forkserver.refusal(FLUX.fork_server, plugin.name if plugin else None, USES_CONDA, FLUX.training.launcher)
    if reason:
        if FLUX.fork_server:
            logger.info(f"flux: no fork server: {reason}")
        return
    log = FLUX.logs_dir / "fork_server.log"
    try:
        server = forkserver.start(log)
    except (OSError, RuntimeError) as error:
        logger.warning(f"flux: no fork server ({error}); every job starts its own Python")
        return
    FORK_SERVERS.append(server)
    os.environ[forkserver.SOCKET_VARIABLE] = server.socket
    logger.info(f"flux: jobs fork from the fork server at {server.socket} (flux.forkserver; its log: {log})")


def stop_fork_server():
    while FORK_SERVERS:
        FORK_SERVERS.pop().stop()
    os.environ.pop(forkserver.SOCKET_VARIABLE, None)


def check_slurm_settings():
    """Under the SLURM executor, a partition and (unless --slurm-no-account) an account must be set: fail before
    the first sbatch rather than on every job."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    resources = workflow.resource_settings.default_resources
    defaults = {name: getattr(value, "raw", value) for name, value in (resources or {}).items()} | site_resources()
    settings = workflow.executor_settings
    problems = check_site_settings(defaults, no_account=bool(getattr(settings, "no_account", False)))
    if problems:
        raise WorkflowError("SLURM settings missing: " + "; ".join(problems))
