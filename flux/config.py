"""Typed configuration: the configuration files, the runs file and the tables file, merged, validated and built
(YAML is read through flux.yamlfiles; the dataset registry's entries are flux.data.spec's).

The Snakefile validates `config` with `snakemake.utils.validate` and builds a `Config` from it; the CLI
loads the same files through `load_config`, which runs the same validation. Semantic checks that a JSON
schema cannot express (unknown dataset ids, empty sampler ranges, missing files) raise `ConfigError`
naming the key and the fix, so `snakemake -n` fails before any job runs.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flux.data.spec import DatasetSpec, SyntheticSettings, load_registry
from flux.errors import ConfigError
from flux.external import ExternalCheckpoint, check_selected, load_external
from flux.models.sizes import HEAD_BUDGETS, SIZES
from flux.tables.sources import claim_sides, load_table_document
from flux.train.runs import ResolvedRun, resolve_runs
from flux.units import UnitScale
from flux.verbs import RESOURCE_KEYS
from flux.yamlfiles import read_yaml_mapping, schema_path, validate_schema

# The kind of dataset each of the paper's roles needs (workflow/schemas/config.schema.yaml lists the same roles):
# a retrieval set bound as `ucf101` would otherwise fail, or score nonsense, deep inside a job.
CLASSIFICATION = ("classification",)
CAPTIONED = ("video_text", "image_text")
ROLE_TASKS = {
    **dict.fromkeys(("k400", "k600", "k700", "k710", "ssv2", "coin", "ucf101", "mit"), CLASSIFICATION),
    **dict.fromkeys(("msrvtt", "didemo", "anet", "lsmdc", "msvd"), ("video_text",)),
    **dict.fromkeys(("coco", "vg", "sbu", "cc3m", "cc12m", "smit", "webvid2m", "webvid10m", "internvid2m"), CAPTIONED),
    "chat": ("video_instruction", "video_text"),
    "mvbench": ("video_qa",),
    "dream1k": ("video_caption",),
}


@dataclass(frozen=True)
class TrainingSettings:
    backend: str = "torch"
    zero_stage: int = 1
    launcher: str = "python"
    gpus_per_node: int = 0
    workers: int = 2
    checkpoint_every: int = 50
    log_every: int = 10
    precision: str = "auto"
    validation_videos: int | None = None  # the end-of-run check's seeded subset (None: the whole split)


@dataclass(frozen=True)
class TeacherSettings:
    weights: Path | None = None
    grid: tuple[int, int, int] | None = None
    text_encoder: Path | None = None


@dataclass(frozen=True)
class ChatSettings:
    """`chat`: main Table 10's frozen LLM (None: the tiny one the pipeline trains), projector and generation length."""

    llm: Path | None = None
    projector: str = "mlp"
    max_new_tokens: int = 512
    tiny_llm: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    scale: str
    seed: int
    registry_path: Path
    paper_numbers_path: Path
    recipe_reference_path: Path
    data_dir: Path
    results_dir: Path
    logs_dir: Path
    datasets: Mapping[str, DatasetSpec]
    roles: Mapping[str, str]
    corpora: Mapping[str, tuple[str, ...]]
    local_paths: Mapping[str, Path]
    synthetic: SyntheticSettings
    thorough_index: bool  # `indexing.thorough`: probes decode every frame
    clip_cache: bool  # `evaluation.clip_cache`: evaluations share decoded test views
    max_views: tuple[int, int] | None  # `evaluation.max_views`: a cap on every protocol's [clips, crops]
    max_videos: Mapping[str, int]  # `evaluation.max_videos`: protocol -> videos scored (a seeded subset)
    claim_replicas: bool  # `evaluation.claim_replicas`: the claims read their sides' seed replicas too
    runs: Mapping[str, ResolvedRun]
    run_seeds: Mapping[str, int]  # runs.<id>.seed: an offset to `seed` (seed replicas)
    selected_runs: tuple[str, ...]
    same_runs: Mapping[str, str]  # `training.same_runs`: a run -> the run that is the same job at this scale
    unit_scale: UnitScale
    training: TrainingSettings
    fork_server: bool  # `fork_server`: local jobs fork from a process that has imported their modules
    teacher: TeacherSettings
    chat: ChatSettings
    resources: Mapping[str, Mapping[str, int]]
    tables: tuple[str, ...]
    table_document: Mapping[str, Any]  # config/tables.yaml: prompts, protocols, table layouts, figures
    figures: tuple[str, ...]
    external: Mapping[str, ExternalCheckpoint]  # the checkpoint registry (config/checkpoints.yaml + entries)
    evaluated_checkpoints: tuple[str, ...]  # `checkpoints.evaluate`: imported and scored
    checkpoint_protocols: tuple[str, ...]  # `checkpoints.protocols`: scored for every evaluated checkpoint
    checkpoint_files: Mapping[str, Path]  # `checkpoints.files`: local copies of the weights
    digest: str  # sha256 of the validated configuration, for provenance
    # derived values memoised per configuration (run lineages: each run's hashes its ancestors' again)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    # -- paths (the data path is fixed: raw -> ready marker -> manifest) ---------------------------
    def dataset_dir(self, dataset: str) -> Path:
        return self.data_dir / "raw" / dataset

    def ready_marker(self, dataset: str) -> Path:
        return self.data_dir / "ready" / f"{dataset}.json"

    def manifest_path(self, dataset: str) -> Path:
        return self.data_dir / "manifests" / f"{dataset}.parquet"

    def index_report_path(self, dataset: str) -> Path:
        return self.data_dir / "manifests" / f"{dataset}.report.json"

    def probe_cache_path(self, dataset: str) -> Path:
        """Probe results kept across index runs (not a rule output: a rerun or a time limit loses nothing)."""
        return self.data_dir / "cache" / "probes" / f"{dataset}.jsonl"

    def seed_replica_differences(self, run: str, replica: str) -> list[str]:
        """What tells `replica` from `run` besides its seed (resolved fields; a parent counts as the same where it is
        the run's parent or a seed replica of it); empty when it is a seed replica of the run."""
        first, second = self.runs[run], self.runs[replica]
        differ = _differing_fields(first, second, ignore=("id", "parent"))
        if first.parent != second.parent and (
            first.parent is None or second.parent is None or self.seed_replica_differences(first.parent, second.parent)
        ):
            differ.append("parent")
        if self.run_seeds.get(run, 0) == self.run_seeds.get(replica, 0):
            differ.append("the same seed")
        return differ

    def table_path(self, table: str) -> Path:
        return self.results_dir / "tables" / f"{table}.tex"

    @property
    def clip_cache_dir(self) -> Path:
        """Decoded test views shared by evaluations (`evaluation.clip_cache`, flux.eval.clip_cache)."""
        return self.results_dir / "cache" / "clips"

    @property
    def tiny_llm_path(self) -> Path:
        """The tiny causal LM the embedded default trains for the chat stage (`chat.llm: null`)."""
        return self.results_dir / "llm" / "tiny.pt"

    @property
    def llm_path(self) -> Path:
        return self.chat.llm or self.tiny_llm_path

    def figure_path(self, name: str) -> Path:
        return self.results_dir / "figures" / f"{name}.png"

    def measured_as(self, run: str) -> str | None:
        """The run whose files hold `run`'s results in this configuration: itself where it is trained, the run it is
        the same job as (`training.same_runs`), or None where it is not trained."""
        run = self.same_runs.get(run, run)
        return run if run in self.selected_runs else None

    def metrics_path(self, run: str, protocol: str) -> Path:
        return self.results_dir / "metrics" / run / f"{protocol}.json"

    def run_dir(self, run: str) -> Path:
        return self.results_dir / "runs" / run

    def checkpoint_path(self, run: str) -> Path:
        return self.run_dir(run) / "final.pt"

    def state_dir(self, run: str) -> Path:
        """Resume states of a run: outside its declared outputs, which Snakemake deletes before a rerun."""
        return self.results_dir / "state" / run

    def head_map_path(self, dataset: str) -> Path:
        """The K710 -> K400/K600/K700 row maps a Kinetics-710 build writes beside its label list."""
        labels = self.datasets[dataset].annotation_files["labels"]
        return (self.dataset_dir(dataset) / labels).with_name("head_maps.json")

    def external_download_dir(self, name: str) -> Path:
        """Where an external checkpoint's downloaded file is kept (not a rule output: a rerun reuses it)."""
        return self.data_dir / "checkpoints" / "external" / name

    def evaluated_protocols(self, name: str) -> list[str]:
        """The protocols an external checkpoint is scored under: the configured ones, then its published ones."""
        published = [number.protocol for number in self.external[name].published]
        return list(dict.fromkeys([*self.checkpoint_protocols, *published]))

    def missing_files(self) -> list[str]:
        """Files the configuration names that do not exist yet, with the key and how to get them: jobs fail on
        them (the placeholder rules teacher_weights / text_encoder, the import), so `snakemake -n` says so first.
        Not errors: a fresh checkout plans the paper's jobs before `dvc pull`."""
        stages = {self.runs[run].stage for run in self.selected_runs}
        wanted = []
        if self.teacher.weights and "teacher" in stages:
            wanted.append(("teacher.weights", self.teacher.weights, "`dvc pull` it or copy the checkpoint there"))
        if self.teacher.text_encoder and "clip" in stages:
            wanted.append(("teacher.text_encoder", self.teacher.text_encoder, "`dvc pull` it or put a Hugging Face folder there"))
        if self.chat.llm and "chat" in stages:
            wanted.append(("chat.llm", self.chat.llm, "`dvc pull` it or put a Hugging Face causal LM folder there"))
        for name in self.evaluated_checkpoints:
            if name in self.checkpoint_files:
                hint = self.external[name].local_hint or f"download {self.external[name].url}"
                wanted.append((f"checkpoints.files.{name}", self.checkpoint_files[name], hint))
        return [f"{key}: {path} does not exist yet; {fix}" for key, path, fix in wanted if not Path(path).exists()]

    def runs_of_stage(self, stage: str) -> list[str]:
        return [run for run in self.selected_runs if self.runs[run].stage == stage]

    # -- selections --------------------------------------------------------------------------------
    def used_datasets(self) -> list[str]:
        """Datasets bound to roles, plus everything a derived dataset is built from (closure)."""
        ordered: list[str] = []
        pending = list(self.roles.values())
        while pending:
            dataset = pending.pop(0)
            if dataset in ordered:
                continue
            ordered.append(dataset)
            derived = self.datasets[dataset].derived
            if derived is not None:
                pending.extend(derived.sources.values())
        return ordered

    def datasets_of_kind(self, kind: str) -> list[str]:
        return [dataset for dataset in self.used_datasets() if self.datasets[dataset].source_kind == kind]

    def resources_for(self, rule: str) -> dict[str, int]:
        merged = dict(self.resources.get("default", {}))
        merged.update(self.resources.get(rule, {}))
        return merged


def load_config(paths: Sequence[str | Path], overrides: Mapping | None = None) -> Config:
    """Merge config files (later ones win, as Snakemake's --configfile), validate, build."""
    if not paths:
        raise ConfigError("no configuration file given; pass --config config/config.yaml")
    from snakemake.utils import update_config  # how Snakemake merges several --configfile files

    document: dict = {}
    for path in paths:
        update_config(document, read_yaml_mapping(Path(path), "configuration file"))
    if overrides:
        update_config(document, copy.deepcopy(dict(overrides)))
    validate_schema(document, schema_path("config.schema.yaml"))
    return build_config(document)


def build_config(document: Mapping) -> Config:
    """Typed objects and semantic checks from a schema-validated (defaults filled) config dict."""
    registry_path = Path(document["registry"])
    datasets = load_registry(registry_path)
    known = ", ".join(sorted(datasets))

    roles = dict(document["roles"])
    for role, dataset in roles.items():
        if dataset not in datasets:
            raise ConfigError(
                f"roles.{role}: unknown dataset '{dataset}'; use one of the ids in {registry_path} ({known}) "
                f"or add an entry there"
            )
    for role, dataset in roles.items():
        if datasets[dataset].task not in ROLE_TASKS[role]:
            raise ConfigError(
                f"roles.{role}: {dataset} is a {datasets[dataset].task} dataset; the role {role} needs a "
                f"{' or '.join(ROLE_TASKS[role])} dataset"
            )
    for dataset, spec in datasets.items():
        if spec.derived is not None:
            for role, source in spec.derived.sources.items():
                if source not in datasets:
                    raise ConfigError(
                        f"{registry_path}: datasets.{dataset}.source.derived.from.{role}: unknown dataset '{source}'"
                    )

    corpora = {}
    for corpus, members in document.get("corpora", {}).items():
        unbound = [role for role in members if role not in roles]
        if unbound:
            raise ConfigError(f"corpora.{corpus}: role(s) {unbound} are not bound under `roles`; bind them or drop them")
        corpora[corpus] = tuple(members)

    local_paths = {}
    for dataset, directory in document.get("local_paths", {}).items():
        if dataset not in datasets:
            raise ConfigError(f"local_paths.{dataset}: unknown dataset; use one of the ids in {registry_path}")
        if datasets[dataset].local is None:
            raise ConfigError(f"local_paths.{dataset}: this dataset has no `local` source in {registry_path}; remove the entry")
        path = Path(directory).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"local_paths.{dataset}: directory {path} does not exist; fix the path ({datasets[dataset].local.hint})"
            )
        local_paths[dataset] = path

    models = dict(document["models"])
    unknown_models = {alias: name for alias, name in models.items() if name not in SIZES}
    if unknown_models:
        raise ConfigError(f"models: {unknown_models} are not in the model registry ({', '.join(SIZES)})")
    runs_path = Path(document["runs_file"])
    runs_document = read_yaml_mapping(runs_path, "runs file")
    validate_schema(runs_document, schema_path("runs.schema.yaml"))
    training_raw = document["training"]
    scale = UnitScale(frames=document["unit_scale"]["frames"], resolution=document["unit_scale"]["resolution"])
    _check_unit_scale(scale)
    runs = resolve_runs(
        runs_document,
        roles=roles,
        corpora=corpora,
        models=models,
        scale=scale,
        stage_overrides=training_raw["stages"] or {},
    )
    same_runs = {run: other for run, other in (training_raw["same_runs"] or {}).items() if other is not None}
    runs = _merge_same_runs(runs, same_runs, runs_document["runs"])
    selected = tuple(run for run in (training_raw["runs"] or runs) if run not in same_runs)
    unknown_runs = [run for run in selected if run not in runs]
    if unknown_runs:
        raise ConfigError(f"training.runs: unknown run(s) {unknown_runs}; the runs are in {runs_path}")
    teacher_raw = document["teacher"]
    teacher = TeacherSettings(
        weights=Path(teacher_raw["weights"]) if teacher_raw["weights"] else None,
        grid=tuple(teacher_raw["grid"]) if teacher_raw["grid"] else None,
        text_encoder=Path(teacher_raw["text_encoder"]) if teacher_raw["text_encoder"] else None,
    )

    synthetic_raw = document["synthetic"]
    synthetic = SyntheticSettings(
        seed=synthetic_raw["seed"],
        count_scale=float(synthetic_raw["count_scale"]),
        duration_s=tuple(synthetic_raw["duration_s"]),
        fps=tuple(synthetic_raw["fps"]),
    )
    if synthetic.duration_s[0] > synthetic.duration_s[1]:
        raise ConfigError(f"synthetic.duration_s: {list(synthetic.duration_s)} is an empty range; use [min, max]")
    if synthetic.fps[0] > synthetic.fps[1]:
        raise ConfigError(f"synthetic.fps: {list(synthetic.fps)} is an empty range; use [min, max]")

    resources = dict(document.get("resources", {}))
    unknown_rules = sorted(set(resources) - set(RESOURCE_KEYS))
    if unknown_rules:
        raise ConfigError(f"resources: unknown rule(s) {unknown_rules}; known: {', '.join(RESOURCE_KEYS)}")

    paper_numbers_path = Path(document["paper_numbers"])
    if not paper_numbers_path.is_file():
        raise ConfigError(f"paper_numbers: {paper_numbers_path} does not exist; restore config/paper_numbers.yaml")
    recipe_reference_path = Path(document["recipe_reference"])
    if not recipe_reference_path.is_file():
        raise ConfigError(f"recipe_reference: {recipe_reference_path} does not exist; restore config/recipe_reference.yaml")

    table_document = load_table_document(Path(document["tables_file"]), document["tables"], runs, roles)
    if not document["evaluation"]["claim_replicas"]:  # the claims' seed replicas are trained only to be read
        claims = table_document.get("claims", [])
        replicas = {run for claim in claims for side in claim_sides(claim) for run in side.get("replicas", [])}
        selected = tuple(run for run in selected if run not in replicas)
    closure = list(selected)
    for run in closure:
        distilled_from = "teacher" if runs[run].stage == "umt" else None
        for needed in (runs[run].parent, distilled_from):
            if needed and needed not in closure:
                closure.append(needed)
    if "teacher" not in runs and any(runs[run].stage == "umt" for run in closure):
        raise ConfigError(f"{runs_path}: Flux-UMT runs need a run named 'teacher'")
    unknown_figures = [name for name in document["figures"] if name not in table_document.get("figures", {})]
    if unknown_figures:
        raise ConfigError(f"figures: {unknown_figures} are not defined under `figures` in {document['tables_file']}")

    external_raw = document["checkpoints"]
    external = load_external(Path(external_raw["registry"]), external_raw["entries"], scale)
    evaluated = tuple(external_raw["evaluate"])
    unknown_checkpoints = [name for name in evaluated if name not in external]
    if unknown_checkpoints:
        raise ConfigError(
            f"checkpoints.evaluate: unknown checkpoint(s) {unknown_checkpoints}; the registry ({external_raw['registry']}) "
            f"has {', '.join(external)}"
        )
    for name in evaluated:
        check_selected(
            external[name],
            external_raw["registry"] if name not in external_raw["entries"] else "config",
            roles,
            {dataset: spec.task for dataset, spec in datasets.items()},
            {dataset: spec.derived.builder if spec.derived else None for dataset, spec in datasets.items()},
            table_document["protocols"],
            runs,
        )
    unknown_subsampled = sorted(set(document["evaluation"]["max_videos"]) - set(table_document["protocols"]))
    if unknown_subsampled:
        known = document["tables_file"]
        raise ConfigError(f"evaluation.max_videos: unknown protocol(s) {unknown_subsampled}; the protocols are in {known}")
    unknown_protocols = [name for name in external_raw["protocols"] if name not in table_document["protocols"]]
    if unknown_protocols:
        known = document["tables_file"]
        raise ConfigError(f"checkpoints.protocols: unknown protocol(s) {unknown_protocols}; the protocols are in {known}")
    stray_files = sorted(set(external_raw["files"]) - set(external))
    if stray_files:
        raise ConfigError(f"checkpoints.files: {stray_files} are not checkpoints of the registry; remove them or add entries")

    paths = document["paths"]
    digest = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    config = Config(
        scale=document["scale"],
        seed=document["seed"],
        registry_path=registry_path,
        paper_numbers_path=paper_numbers_path,
        recipe_reference_path=recipe_reference_path,
        data_dir=Path(paths["data"]),
        results_dir=Path(paths["results"]),
        logs_dir=Path(paths["logs"]),
        datasets=datasets,
        roles=roles,
        corpora=corpora,
        local_paths=local_paths,
        synthetic=synthetic,
        thorough_index=bool(document["indexing"]["thorough"]),
        clip_cache=bool(document["evaluation"]["clip_cache"]),
        max_views=tuple(document["evaluation"]["max_views"]) if document["evaluation"]["max_views"] else None,
        max_videos=dict(document["evaluation"]["max_videos"]),
        claim_replicas=bool(document["evaluation"]["claim_replicas"]),
        runs=runs,
        run_seeds={run: int(entry.get("seed", 0)) for run, entry in runs_document["runs"].items()},
        selected_runs=tuple(closure),
        same_runs=same_runs,
        unit_scale=scale,
        training=TrainingSettings(
            **{key: value for key, value in training_raw.items() if key not in ("runs", "stages", "same_runs")}
        ),
        fork_server=bool(document["fork_server"]),
        teacher=teacher,
        chat=ChatSettings(
            llm=Path(document["chat"]["llm"]) if document["chat"]["llm"] else None,
            projector=document["chat"]["projector"],
            max_new_tokens=int(document["chat"]["max_new_tokens"]),
            tiny_llm=dict(document["chat"]["tiny_llm"]),
        ),
        resources=resources,
        tables=tuple(document["tables"]),
        table_document=table_document,
        figures=tuple(document["figures"]),
        external=external,
        evaluated_checkpoints=evaluated,
        checkpoint_protocols=tuple(external_raw["protocols"]),
        checkpoint_files={name: Path(path).expanduser() for name, path in external_raw["files"].items()},
        digest=digest,
    )
    _check_synthetic_classes(config)
    return config


def _differing_fields(first: ResolvedRun, second: ResolvedRun, ignore: Sequence[str]) -> list[str]:
    """The resolved fields in which two runs differ, but for `ignore`."""
    return [
        f.name for f in dataclasses.fields(first) if f.name not in ignore and getattr(first, f.name) != getattr(second, f.name)
    ]


def _merge_same_runs(runs: dict[str, Any], same_runs: Mapping[str, str], entries: Mapping[str, Any]) -> dict[str, Any]:
    """`training.same_runs`: each run that resolves to exactly another (but for its id, seed included) is dropped in
    favour of it; its children read the other's checkpoint (and readers of its results the other's: Config.measured_as)."""
    for run, other in same_runs.items():
        unknown = [name for name in (run, other) if name not in runs]
        if unknown:
            raise ConfigError(f"training.same_runs.{run}: unknown run(s) {unknown}")
        differ = _differing_fields(runs[run], runs[other], ignore=("id",))
        if entries[run].get("seed", 0) != entries[other].get("seed", 0):
            differ.append("seed")
        if differ:
            raise ConfigError(
                f"training.same_runs.{run}: {run} and {other} differ at this scale ({', '.join(differ)}); only the same job "
                f"can stand in for another: remove the entry"
            )
    return {
        run_id: dataclasses.replace(run, parent=same_runs[run.parent]) if run.parent in same_runs else run
        for run_id, run in runs.items()
    }


def _check_unit_scale(scale: UnitScale) -> None:
    """A scale so small that the paper's inputs collapse (one patch a frame; the three heads' budgets on one token
    count) would run, and mean nothing: refused with the smallest factors that keep them apart."""
    side = scale.pixels(224)
    if side < 2 * scale.patch_size:
        raise ConfigError(
            f"unit_scale.resolution: {scale.resolution} maps the paper's 224 px to {side} px, one patch a frame, so every "
            f"input collapses to one token per frame; use at least {2 * scale.patch_size / 224} (2 x 2 patches)"
        )
    budgets = [scale.tokens(budget) for budget in HEAD_BUDGETS]
    if len(set(budgets)) < len(budgets):
        raise ConfigError(
            f"unit_scale: the paper's budgets {list(HEAD_BUDGETS)} become {budgets} tokens, so FluxViT's output heads "
            f"no longer serve different budgets; raise unit_scale.frames or unit_scale.resolution"
        )


def _check_synthetic_classes(config: Config) -> None:
    from flux.data.scenes import MOTIONS

    for dataset in config.datasets_of_kind("synthetic"):
        synthetic = config.datasets[dataset].synthetic
        unknown = [name for name in synthetic.classes if name not in MOTIONS]
        unknown += [name for name in synthetic.renames if name not in synthetic.classes]
        if unknown:
            raise ConfigError(
                f"{config.registry_path}: datasets.{dataset}.source.synthetic: unknown motion(s) {unknown}; "
                f"use names from flux.data.scenes.MOTIONS"
            )
