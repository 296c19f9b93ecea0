# Shared definitions: the typed configuration, path helpers, resources and job specs.
import re
import sys

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from flux.config import TABLE8_ROLES, build_config
from flux.errors import ConfigError
from flux.jobs import job_spec_json

try:
    FLUX = build_config(config)
except ConfigError as error:
    raise WorkflowError(f"configuration error: {error}") from None

# Jobs run with the interpreter that runs Snakemake (whether or not its environment is activated), except
# under `--sdm conda`, where each rule's environment (workflow/envs/flux.yaml) provides `python`.
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    FLUX_CLI = "python -m flux"
else:
    FLUX_CLI = f"{sys.executable} -m flux"
LOGS = str(FLUX.logs_dir)
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
        return job_spec_json(FLUX, verb, target or wildcards.dataset)

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


def table8_manifests(wildcards):
    datasets = {FLUX.roles[row] for row in TABLE8_ROLES if row in FLUX.roles}
    for members in FLUX.corpora.values():
        datasets.update(FLUX.roles[role] for role in members)
    return sorted(manifest(dataset) for dataset in datasets)


def all_manifests():
    return [manifest(dataset) for dataset in FLUX.used_datasets()]


def all_tables():
    return [str(FLUX.table_path(table)) for table in FLUX.tables]
