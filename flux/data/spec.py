"""The dataset registry's entries as typed specs (config/datasets.yaml, validated by
workflow/schemas/datasets.schema.yaml): where a dataset comes from (URL files, a local directory, the synthetic
generator, or a builder over other datasets) and how its annotations read. Beside the data code that consumes
them, so that data never imports the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flux.data.download import RemoteFile
from flux.errors import ConfigError
from flux.yamlfiles import read_yaml_mapping, schema_path, validate_schema

# Which annotation format each synthetic layout writes.
SYNTHETIC_FORMATS = {
    "kinetics": "kinetics_csv",
    "ssv2": "ssv2_json",
    "coin": "coin_json",
    "ucf101": "ucf101_splits",
    "mit": "mit_csv",
    "msrvtt": "msrvtt",
    "didemo": "didemo_json",
    "anet": "anet_json",
    "lsmdc": "lsmdc_tsv",
    "msvd": "msvd",
    "vindlu_video": "vindlu_json",
    "vindlu_image": "vindlu_json",
    "mvbench": "mvbench_json",
    "dream1k": "dream1k_jsonl",
    "videochat2_it": "videochat2_it",
}
CLASS_LAYOUTS = ("kinetics", "ssv2", "ucf101", "mit")  # one motion (the class) per item


@dataclass(frozen=True)
class LocalSource:
    links: str  # sub-path of the dataset directory the user's directory stands for ('.' = all of it)
    hint: str


@dataclass(frozen=True)
class SyntheticSource:
    layout: str
    splits: Mapping[str, int]
    classes: tuple[str, ...] = ()
    family: str | None = None
    renames: Mapping[str, str] = field(default_factory=dict)
    offsets: Mapping[str, int] = field(default_factory=dict)
    captions: tuple[int, int] = (1, 1)
    steps: int = 1
    seed: int = 0
    appearance_bias: float = 0.0


@dataclass(frozen=True)
class DerivedSource:
    builder: str
    sources: Mapping[str, str]  # role -> dataset id, in precedence order
    renames: Mapping[str, str] = field(default_factory=dict)
    reference_label_map: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    title: str
    modality: str
    task: str
    annotation_format: str
    annotation_files: Mapping[str, str]
    annotation_options: Mapping[str, Any] = field(default_factory=dict)
    media_dir: str = "media"
    allow_flip: bool = True
    paragraph: bool = False
    trim_seconds: float | None = None
    max_text_length: int | None = None
    evaluation_split: str | None = None  # the split the paper's protocol scores (None: val, else test)
    frame_sampling: str = "tsn"  # tsn | ssv2 (the official SSv2 loader's frame indices)
    files: tuple[RemoteFile, ...] = ()
    local: LocalSource | None = None
    synthetic: SyntheticSource | None = None
    derived: DerivedSource | None = None
    homepage: str | None = None
    licence: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the registry entry as written

    @property
    def source_kind(self) -> str:
        if self.synthetic is not None:
            return "synthetic"
        if self.derived is not None:
            return "derived"
        return "fetch"


@dataclass(frozen=True)
class SyntheticSettings:
    seed: int = 0
    count_scale: float = 1.0
    duration_s: tuple[float, float] = (1.0, 10.0)
    fps: tuple[int, int] = (10, 30)


def load_registry(path: Path) -> dict[str, DatasetSpec]:
    document = read_yaml_mapping(path, "dataset registry")
    validate_schema(document, schema_path("datasets.schema.yaml"))
    return {dataset: dataset_spec_from_entry(dataset, entry, path) for dataset, entry in document["datasets"].items()}


def dataset_spec_from_entry(dataset: str, entry: dict, registry: Path | str = "<job spec>") -> DatasetSpec:
    source = entry["source"]
    key = f"{registry}: datasets.{dataset}"
    synthetic = None
    if "synthetic" in source:
        raw = source["synthetic"]
        synthetic = SyntheticSource(
            layout=raw["layout"],
            splits=dict(raw["splits"]),
            classes=tuple(raw.get("classes", ())),
            family=raw.get("family"),
            renames=dict(raw.get("renames", {})),
            offsets=dict(raw.get("offsets", {})),
            captions=tuple(raw.get("captions", (1, 1))),
            steps=int(raw.get("steps", 1)),
            seed=int(raw.get("seed", 0)),
            appearance_bias=float(raw.get("appearance_bias", 0.0)),
        )
        if synthetic.appearance_bias and (synthetic.steps > 1 or synthetic.layout not in CLASS_LAYOUTS):
            raise ConfigError(
                f"{key}.source.synthetic.appearance_bias: only single-step classification layouts "
                f"({', '.join(CLASS_LAYOUTS)}) have one motion per item to tie an appearance to; remove it"
            )
        expected = SYNTHETIC_FORMATS[synthetic.layout]
        if entry["annotations"]["format"] != expected:
            raise ConfigError(f"{key}.annotations.format must be '{expected}' for synthetic layout '{synthetic.layout}'")
        if synthetic.captions[0] > synthetic.captions[1]:
            raise ConfigError(f"{key}.source.synthetic.captions: [min, max] with min > max; swap them")
    derived = None
    if "derived" in source:
        raw = source["derived"]
        derived = DerivedSource(
            builder=raw["builder"],
            sources=dict(raw["from"]),
            renames=dict(raw.get("renames", {})),
            reference_label_map=raw.get("reference_label_map"),
        )
    local = LocalSource(**source["local"]) if "local" in source else None
    files = tuple(
        RemoteFile(url=item["url"], path=item["path"], sha256=item.get("sha256"), extract=item.get("extract", False))
        for item in source.get("files", ())
    )
    annotations = entry["annotations"]
    return DatasetSpec(
        id=dataset,
        title=entry.get("title", dataset),  # job specs leave descriptive fields out
        modality=entry["modality"],
        task=entry["task"],
        annotation_format=annotations["format"],
        annotation_files=dict(annotations["files"]),
        annotation_options=dict(annotations.get("options", {})),
        media_dir=entry.get("media_dir", "media"),
        allow_flip=entry.get("allow_flip", True),
        paragraph=entry.get("paragraph", False),
        trim_seconds=entry.get("trim_seconds"),
        max_text_length=entry.get("max_text_length"),
        evaluation_split=entry.get("evaluation_split"),
        frame_sampling=entry.get("frame_sampling", "tsn"),
        files=files,
        local=local,
        synthetic=synthetic,
        derived=derived,
        homepage=entry.get("homepage"),
        licence=entry.get("licence"),
        raw=entry,
    )
