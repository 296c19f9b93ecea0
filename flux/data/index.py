"""Indexing: annotations + media on disk -> one manifest (parquet) per dataset, and a report.

Every annotated item becomes a manifest row, decodable or not: an undecodable or missing file keeps its
row with `decodable = False` and its `error_kind`, so evaluation can count it and no denominator shrinks
silently. The report counts items per split and failures per kind.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from flux.data.annotations import AnnotationFiles, AnnotationRecord, ParsedAnnotations, parse
from flux.data.registry import require_dataset_dir, spec_from_job
from flux.data.video import CONTAINER_EXTENSIONS, Probe, probe
from flux.errors import AnnotationError
from flux.io import atomic_path, atomic_write_json

logger = logging.getLogger(__name__)

MEDIA_EXTENSIONS = set().union(*CONTAINER_EXTENSIONS.values())

MANIFEST_SCHEMA = pa.schema(
    [
        ("dataset", pa.string()),
        ("sample_id", pa.string()),
        ("split", pa.string()),
        ("media_path", pa.string()),  # relative to the data directory
        ("media_type", pa.string()),  # video | image
        ("label_id", pa.int32()),  # -1 when unlabelled
        ("label_name", pa.string()),
        ("captions", pa.list_(pa.string())),
        ("start_sec", pa.float64()),
        ("end_sec", pa.float64()),
        ("duration_s", pa.float64()),
        ("num_frames", pa.int32()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("decodable", pa.bool_()),
        ("error_kind", pa.string()),
        ("error_detail", pa.string()),
    ]
)
METADATA_KEY = b"flux.manifest"


def media_stem(name: str) -> str:
    """A media name without its extension; names ending in a bare '.' (DiDeMo) lose the dot."""
    if name.endswith("."):
        return name[:-1]
    root, extension = os.path.splitext(name)
    return root if extension.lower() in MEDIA_EXTENSIONS else name


class MediaIndex:
    """All files under a media root, walked once, looked up by path, by stem in a folder, or by stem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: set[str] = set()
        self.by_folder_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.by_stem: dict[str, list[str]] = defaultdict(list)
        for folder, _, names in os.walk(root, followlinks=True):
            relative_folder = os.path.relpath(folder, root)
            relative_folder = "" if relative_folder == "." else relative_folder
            for name in names:
                relative = os.path.join(relative_folder, name)
                stem = media_stem(name)
                self.paths.add(relative)
                self.by_folder_stem[(relative_folder, stem)].append(relative)
                self.by_stem[stem].append(relative)

    def resolve(self, names: Sequence[str]) -> str | None:
        """The file an annotation names: exact path, then another extension, then the stem anywhere."""
        for name in names:
            if name in self.paths:
                return name
        for name in names:
            folder, base = os.path.split(name)
            candidates = self.by_folder_stem.get((folder, media_stem(base)), [])
            if len(candidates) == 1:
                return candidates[0]
        for name in names:
            candidates = self.by_stem.get(media_stem(os.path.basename(name)), [])
            if len(candidates) == 1:
                return candidates[0]
        return None


@dataclass(frozen=True)
class ManifestInfo:
    dataset: str
    modality: str
    task: str
    annotation_format: str
    class_names: list[str] | None
    paragraph: bool
    allow_flip: bool
    trim_seconds: float | None


def _probe_job(arguments: tuple[str, str, int]) -> Probe:
    path, modality, threads = arguments
    return probe(Path(path), modality, threads)


def probe_all(paths: Sequence[str | None], modality: str, workers: int, threads: int) -> list[Probe]:
    """Probe files in parallel (None = unresolved, reported as missing); order preserved."""
    jobs = [(path, modality, threads) for path in paths if path is not None]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            probed = list(tqdm(pool.map(_probe_job, jobs, chunksize=8), total=len(jobs), desc="probe", unit="file"))
    else:
        probed = [_probe_job(job) for job in tqdm(jobs, desc="probe", unit="file")]
    results = iter(probed)
    return [next(results) if path is not None else Probe(False, "missing", "no file matches the annotation") for path in paths]


def build_manifest(
    dataset: str,
    parsed: ParsedAnnotations,
    media_roots: dict[str, Path],
    data_dir: Path,
    modality: str,
    workers: int = 1,
    threads: int = 1,
) -> pd.DataFrame:
    """Resolve every record's media under its root (the source dataset's for derived datasets) and probe it."""
    class_index = {name: position for position, name in enumerate(parsed.class_names or [])}
    indexes: dict[str, MediaIndex] = {}
    paths: list[str | None] = []
    shown: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for position, record in enumerate(parsed.records):
        key = (record.split, record.sample_id)
        if key in seen:
            raise AnnotationError(f"{dataset}: sample '{record.sample_id}' appears twice in split '{record.split}'")
        seen[key] = position
        source = record.source or dataset
        if source not in media_roots:
            raise AnnotationError(f"{dataset}: record {record.sample_id} names source '{source}', which has no media root")
        root = media_roots[source]
        if source not in indexes:
            indexes[source] = MediaIndex(root)
        found = indexes[source].resolve([record.media, *record.alt_media])
        full = root / (found or record.media)
        paths.append(str(full) if found else None)
        shown.append(os.path.relpath(full, data_dir))
        if record.label_name is not None and record.label_name not in class_index:
            raise AnnotationError(f"{dataset}: record {record.sample_id} has label '{record.label_name}' outside the class list")
    probes = probe_all(paths, modality, workers, threads)
    rows = [
        _row(dataset, record, media_path, result, class_index, modality)
        for record, media_path, result in zip(parsed.records, shown, probes)
    ]
    return pd.DataFrame(rows, columns=MANIFEST_SCHEMA.names)


def _row(dataset: str, record: AnnotationRecord, media_path: str, result: Probe, class_index: dict, modality: str) -> dict:
    return {
        "dataset": dataset,
        "sample_id": record.sample_id,
        "split": record.split,
        "media_path": media_path,
        "media_type": modality,
        "label_id": class_index.get(record.label_name, -1) if record.label_name is not None else -1,
        "label_name": record.label_name,
        "captions": list(record.captions),
        "start_sec": record.start_sec,
        "end_sec": record.end_sec,
        "duration_s": result.duration_s,
        "num_frames": result.num_frames,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "decodable": result.decodable,
        "error_kind": result.error_kind,
        "error_detail": result.error_detail,
    }


def write_manifest(frame: pd.DataFrame, info: ManifestInfo, path: Path) -> None:
    table = pa.Table.from_pandas(frame, schema=MANIFEST_SCHEMA, preserve_index=False)
    metadata = {METADATA_KEY: json.dumps(info.__dict__).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)


def read_manifest(path: Path) -> tuple[pd.DataFrame, ManifestInfo]:
    from flux.errors import DatasetMissingError

    if not Path(path).is_file():
        raise DatasetMissingError(f"manifest {path} does not exist; run `snakemake {path}` (or `flux index`)")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise AnnotationError(
            f"{path} is not a flux manifest (no '{METADATA_KEY.decode()}' metadata); rebuild it with `flux index`"
        )
    return table.to_pandas(), ManifestInfo(**json.loads(raw))


def kind_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(kind): int(count) for kind, count in Counter(frame["error_kind"].dropna()).items()}


def summarize(frame: pd.DataFrame, info: ManifestInfo) -> dict[str, Any]:
    """Counts per split, failures per kind (undecodable never disappear from these numbers)."""
    splits = {}
    for split, part in frame.groupby("split", sort=True):
        splits[split] = {
            "items": int(len(part)),
            "decodable": int(part["decodable"].sum()),
            "undecodable": int((~part["decodable"]).sum()),
            "texts": int(part["captions"].map(len).sum()),
            "error_kinds": kind_counts(part),
        }
    failures = frame[frame["error_kind"].notna()]
    examples: dict[str, list[str]] = {}
    for kind, part in failures.groupby("error_kind", sort=True):
        examples[kind] = part["media_path"].head(10).tolist()
    return {
        "dataset": info.dataset,
        "modality": info.modality,
        "task": info.task,
        "format": info.annotation_format,
        "items": int(len(frame)),
        "media": int(len(frame)),
        "texts": int(frame["captions"].map(len).sum()),
        "decodable": int(frame["decodable"].sum()),
        "undecodable": int((~frame["decodable"]).sum()),
        "error_kinds": kind_counts(frame),
        "error_examples": examples,
        "splits": splits,
        "classes": len(info.class_names) if info.class_names else 0,
        "total_duration_s": float(frame["duration_s"].sum()),
    }


def run(job: dict) -> None:
    """`flux index`: parse annotations, resolve and probe media, write manifest + report."""
    spec = spec_from_job(job)
    dataset_dir = require_dataset_dir(spec.id, Path(job["dataset_dir"]))
    parsed = parse(spec.annotation_format, AnnotationFiles(dataset_dir, spec.annotation_files, spec.annotation_options))
    media_roots = {name: Path(root) for name, root in job["media_roots"].items()}
    frame = build_manifest(
        spec.id, parsed, media_roots, Path(job["data_dir"]), spec.modality, job["workers"], job["decode_threads"]
    )
    info = ManifestInfo(
        dataset=spec.id,
        modality=spec.modality,
        task=spec.task,
        annotation_format=spec.annotation_format,
        class_names=parsed.class_names,
        paragraph=spec.paragraph,
        allow_flip=spec.allow_flip,
        trim_seconds=spec.trim_seconds,
    )
    report = summarize(frame, info)
    write_manifest(frame, info, Path(job["manifest"]))
    atomic_write_json(Path(job["report"]), report)
    logger.info("%s: %d items, %d undecodable %s", spec.id, report["items"], report["undecodable"], report["error_kinds"] or "")
