"""External checkpoints (config/checkpoints.yaml): weights this pipeline did not train, such as the models the
FluxViT and InternVideo2 authors released. `flux import <name>` writes one as results/runs/<name>/final.pt in
this pipeline's format (flux.models.importing), after which evaluation, protocols and tables treat it as a run:
`snakemake results/metrics/<name>/model_zoo.json` scores it, and the checkpoints table sets its numbers beside
the publisher's.

Torch-free: the registry is resolved and checked when the configuration loads, so `snakemake -n` reports a bad
entry (an unknown architecture, a head the architecture lacks, an unbound role, a published number for a
setting its protocol does not have) before any job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flux.errors import ConfigError
from flux.models.sizes import MODEL_SWITCHES, SIZES
from flux.units import UnitScale

KINETICS710_BUILDER = "kinetics710"


@dataclass(frozen=True)
class PublishedNumber:
    protocol: str  # a protocol of config/tables.yaml
    setting: str  # one of its result keys, paper units (8x224@2048)
    metric: str  # top1 | top5
    value: float
    source: str  # where it is published


@dataclass(frozen=True)
class ExternalCheckpoint:
    name: str
    title: str
    model: str  # an architecture of flux.models.sizes.SIZES
    model_options: Mapping[str, Any]  # architecture switches (flux.models.sizes.MODEL_SWITCHES)
    role: str  # the classifier's rows are this role's dataset's classes, in its class order
    head_map: str | None  # role of the Kinetics-710 dataset whose head map cuts K710 rows to `role`'s classes
    heads: Mapping[int, int]  # trained output head -> tokens it serves, in this configuration's units
    paper_heads: Mapping[int, int]  # the same in paper units, as the registry writes them
    preprocessing: Mapping[str, list[float]]  # mean / std the weights expect; absent: ImageNet's (EvalTransform's)
    url: str | None  # a public file: downloaded by the import
    sha256: str | None  # None: the publisher gives none; the import records the file as unverified
    local_hint: str | None  # a file that cannot be downloaded: how to get it
    published: tuple[PublishedNumber, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def output_heads(self) -> int:
        return int(self.model_options.get("output_heads", SIZES[self.model].output_heads))


def resolve_entry(name: str, entry: Mapping[str, Any], where: str, scale: UnitScale) -> ExternalCheckpoint:
    """One schema-validated registry entry, with the checks a schema cannot make."""
    key = f"{where}: checkpoints.{name}"
    if entry["model"] not in SIZES:
        raise ConfigError(f"{key}.model: '{entry['model']}' is not in the model registry ({', '.join(SIZES)})")
    options = dict(entry.get("model_options", {}))
    unknown = sorted(set(options) - set(MODEL_SWITCHES))
    if unknown:
        raise ConfigError(f"{key}.model_options: unknown switch(es) {unknown}; known: {', '.join(MODEL_SWITCHES)}")
    checkpoint_heads = int(options.get("output_heads", SIZES[entry["model"]].output_heads))
    paper_heads = {int(head): int(tokens) for head, tokens in entry["heads"].items()}
    beyond = sorted(head for head in paper_heads if head >= checkpoint_heads)
    if beyond:
        raise ConfigError(
            f"{key}.heads: head(s) {beyond} do not exist on {entry['model']}, which has {checkpoint_heads} output head(s)"
        )
    source = entry["source"]
    published = tuple(PublishedNumber(**item) for item in entry.get("published", ()))
    return ExternalCheckpoint(
        name=name,
        title=entry.get("title", name),
        model=entry["model"],
        model_options=options,
        role=entry["classifier"]["role"],
        head_map=entry["classifier"].get("head_map"),
        heads={head: scale.tokens(tokens) for head, tokens in paper_heads.items()},
        paper_heads=paper_heads,
        preprocessing=dict(entry.get("preprocessing", {})),
        url=source.get("url"),
        sha256=source["sha256"].lower() if source.get("sha256") else None,
        local_hint=source.get("local"),
        published=published,
        raw=entry,
    )


def check_selected(
    checkpoint: ExternalCheckpoint,
    where: str,
    roles: Mapping[str, str],
    tasks: Mapping[str, str],
    builders: Mapping[str, str | None],
    protocols: Mapping[str, Mapping[str, Any]],
    run_ids: Any,
) -> None:
    """The checks that need the configuration: roles bound to datasets of the right kind, published numbers
    that name a protocol setting, no clash with a training run's name. `tasks` / `builders`: dataset -> task /
    derived builder (None: not derived)."""
    from flux.eval.protocols import expand_protocol

    key = f"{where}: checkpoints.{checkpoint.name}"
    if checkpoint.name in run_ids:
        raise ConfigError(f"{key}: a training run of the runs file has this name too; rename the checkpoint")
    if checkpoint.role not in roles:
        raise ConfigError(f"{key}.classifier.role: role '{checkpoint.role}' is not bound under `roles` in this configuration")
    dataset = roles[checkpoint.role]
    if tasks[dataset] != "classification":
        raise ConfigError(
            f"{key}.classifier.role: role '{checkpoint.role}' is bound to {dataset}, a {tasks[dataset]} dataset; a "
            f"classifier's rows need a classification dataset"
        )
    if checkpoint.head_map is not None:
        if checkpoint.head_map not in roles:
            raise ConfigError(f"{key}.classifier.head_map: role '{checkpoint.head_map}' is not bound under `roles`")
        if builders[roles[checkpoint.head_map]] != KINETICS710_BUILDER:
            raise ConfigError(
                f"{key}.classifier.head_map: role '{checkpoint.head_map}' is bound to {roles[checkpoint.head_map]}, which "
                f"is not built by the kinetics710 builder (the head map comes from it)"
            )
    scale = UnitScale()  # published settings are matched in paper units
    for number in checkpoint.published:
        if number.protocol not in protocols:
            raise ConfigError(f"{key}.published: unknown protocol '{number.protocol}' (known: {', '.join(protocols)})")
        protocol = protocols[number.protocol]
        if protocol["task"] != "classification" or protocol.get("roles"):
            raise ConfigError(
                f"{key}.published: protocol '{number.protocol}' does not score the checkpoint's classifier on its own "
                f"role (task {protocol['task']}, roles {protocol.get('roles')})"
            )
        keys = expand_protocol(number.protocol, protocol, checkpoint.paper_heads, scale).keys
        if number.setting not in keys:
            raise ConfigError(
                f"{key}.published: protocol '{number.protocol}' has no setting '{number.setting}' "
                f"(it has {', '.join(sorted(keys))})"
            )


def load_external(registry: Path, entries: Mapping[str, Any], scale: UnitScale) -> dict[str, ExternalCheckpoint]:
    """The registry file's entries and the configuration's own (`checkpoints.entries`, which may not redefine a
    registry entry: a silent override would evaluate other weights under a released model's name)."""
    from flux.yamlfiles import read_yaml_mapping, schema_path, validate_schema

    document = read_yaml_mapping(registry, "checkpoint registry")
    validate_schema(document, schema_path("checkpoints.schema.yaml"))
    validate_schema({"checkpoints": dict(entries)}, schema_path("checkpoints.schema.yaml"))
    clashes = sorted(set(entries) & set(document["checkpoints"]))
    if clashes:
        raise ConfigError(f"checkpoints.entries: {clashes} are already defined in {registry}; give yours other names")
    resolved = {name: resolve_entry(name, entry, str(registry), scale) for name, entry in document["checkpoints"].items()}
    resolved.update({name: resolve_entry(name, entry, "config", scale) for name, entry in entries.items()})
    return resolved
