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
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from flux.data.annotations import AnnotationFiles, AnnotationRecord, ParsedAnnotations, parse
from flux.data.job_spec import IndexJob
from flux.data.registry import require_dataset_dir
from flux.data.video import CONTAINER_EXTENSIONS, PROBE_VERSION, Probe, probe
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
        ("start_sec", pa.float64()),  # segment within the media file (null: the whole file)
        ("end_sec", pa.float64()),
        ("source_start_sec", pa.float64()),  # where a pre-cut clip sits in its source video (Kinetics)
        ("source_end_sec", pa.float64()),
        ("duration_s", pa.float64()),
        ("num_frames", pa.int32()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("decodable", pa.bool_()),
        ("error_kind", pa.string()),
        ("error_detail", pa.string()),
        ("details", pa.string()),  # chat benchmarks: question / instruction turns / reference events (JSON)
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


def _probe_job(arguments: tuple[str, str, bool]) -> Probe:
    path, modality, thorough = arguments
    return probe(Path(path), modality, thorough=thorough)


CHUNK_PER_WORKER = 64


class ProbeCache:
    """Probe results keyed by media path (relative to the data directory), size and mtime.

    Appended to a JSON-lines file after every chunk, so an index job killed by a time limit resumes where
    it stopped, and a derived dataset (Kinetics-710) reuses its sources' probes instead of probing the
    same clips again. A torn last line (a job killed mid-write) is ignored.
    """

    def __init__(self, data_dir: Path, path: Path | None = None, reuse: Sequence[Path] = ()) -> None:
        self.data_dir = data_dir
        self.path = path
        self.entries: dict[str, dict] = {}
        for source in [*reuse, *([path] if path else [])]:
            if source.is_file():
                with open(source, encoding="utf-8") as handle:
                    for line in handle:
                        try:
                            entry = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        self.entries[entry["path"]] = entry

    def _key(self, path: str) -> tuple[str, int, int] | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return os.path.relpath(path, self.data_dir), stat.st_size, stat.st_mtime_ns

    def lookup(self, path: str, thorough: bool = False) -> Probe | None:
        """The cached probe of an unchanged file, if it decoded as much as asked (a thorough probe serves both)."""
        key = self._key(path)
        entry = self.entries.get(key[0]) if key else None
        if entry is None or (entry["size"], entry["mtime_ns"]) != key[1:]:
            return None
        if thorough and not entry.get("thorough", False):
            return None
        if not entry["probe"]["decodable"] and entry.get("probe_version", 1) < PROBE_VERSION:
            return None  # an older probe's failure may be one this probe does not find: probed again (failures are few)
        return Probe(**entry["probe"])

    def store(self, probed: Sequence[tuple[str, Probe]], thorough: bool = False) -> None:
        lines = []
        for path, result in probed:
            key = self._key(path)
            if key is None:
                continue
            entry = {
                "path": key[0],
                "size": key[1],
                "mtime_ns": key[2],
                "probe": asdict(result),
                "thorough": thorough,
                "probe_version": PROBE_VERSION,
            }
            self.entries[key[0]] = entry
            lines.append(json.dumps(entry) + "\n")
        if self.path is not None and lines:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.writelines(lines)


def _probe_isolated(path: str, modality: str, thorough: bool) -> Probe:
    """Probe one file in a process of its own, so that a decoder crash only costs that file."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(_probe_job, (path, modality, thorough)).result()
        except BrokenProcessPool:
            return Probe(False, "crash", "the decoder process died on this file")


def probe_all(
    paths: Sequence[str | None], modality: str, workers: int = 1, cache: ProbeCache | None = None, thorough: bool = False
) -> list[Probe]:
    """Probe files in worker processes, chunk by chunk (None = unresolved: reported as missing); `thorough`:
    decode every frame of every video.

    Order is preserved. A worker that dies (a decoder segfault) fails its chunk, whose files are then
    probed one process each: the culprit is recorded as `crash`, the others as they are.
    """
    results: list[Probe | None] = [None] * len(paths)
    todo = []
    for position, path in enumerate(paths):
        if path is None:
            results[position] = Probe(False, "missing", "no file matches the annotation")
        elif cache is not None and (cached := cache.lookup(path, thorough)) is not None:
            results[position] = cached
        else:
            todo.append(position)
    if todo:
        chunk_size = CHUNK_PER_WORKER * workers
        progress = tqdm(total=len(todo), desc="probe", unit="file", mininterval=10)
        pool = ProcessPoolExecutor(max_workers=workers)
        try:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                jobs = [(paths[position], modality, thorough) for position in chunk]
                try:
                    probed = list(pool.map(_probe_job, jobs, chunksize=4))
                except BrokenProcessPool:
                    logger.warning("a probe worker died; probing %d files one process each", len(jobs))
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(max_workers=workers)
                    probed = [_probe_isolated(path, modality, thorough) for path, _, _ in jobs]
                for position, result in zip(chunk, probed):
                    results[position] = result
                if cache is not None:
                    cache.store([(paths[position], result) for position, result in zip(chunk, probed)], thorough)
                progress.update(len(chunk))
        finally:
            pool.shutdown()
            progress.close()
    return results


def build_manifest(
    dataset: str,
    parsed: ParsedAnnotations,
    media_roots: dict[str, Path],
    data_dir: Path,
    modality: str,
    workers: int = 1,
    cache: ProbeCache | None = None,
    thorough: bool = False,
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
    probes = probe_all(paths, modality, workers, cache, thorough)
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
        "source_start_sec": record.source_start_sec,
        "source_end_sec": record.source_end_sec,
        "duration_s": result.duration_s,
        "num_frames": result.num_frames,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "decodable": result.decodable,
        "error_kind": result.error_kind,
        "error_detail": result.error_detail,
        "details": record.details,
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
        "texts": int(frame["captions"].map(len).sum()),
        "decodable": int(frame["decodable"].sum()),
        "undecodable": int((~frame["decodable"]).sum()),
        "error_kinds": kind_counts(frame),
        "error_examples": examples,
        "splits": splits,
        "classes": len(info.class_names) if info.class_names else 0,
        "total_duration_s": float(frame["duration_s"].sum()),
    }


def unverified_downloads(ready: Path) -> list[dict[str, Any]]:
    """The dataset's downloaded files that nothing showed to be whole (no sha256 in the registry and no length from
    the server, or present before and not checked again), from its ready marker: said in the report, so that a
    truncated annotation file or archive is not taken for the whole one silently."""
    from flux.data.download import UNVERIFIED

    try:
        files = json.loads(ready.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError):
        return []
    return [
        {"path": item["path"], "completeness": item["completeness"], "size": item.get("size")}
        for item in files
        if item.get("completeness") in UNVERIFIED
    ]


def run(job: dict) -> None:
    """`flux index`: parse annotations, resolve and probe media, write manifest + report."""
    task = IndexJob.from_dict(job)
    spec = task.dataset_spec()
    dataset_dir = require_dataset_dir(spec, Path(task.dataset_dir))
    parsed = parse(spec.annotation_format, AnnotationFiles(dataset_dir, spec.annotation_files, spec.annotation_options))
    media_roots = {name: Path(root) for name, root in task.media_roots.items()}
    data_dir = Path(task.data_dir)
    cache = ProbeCache(data_dir, Path(task.probe_cache), [Path(path) for path in task.reuse_probes])
    thorough = bool(task.thorough)
    frame = build_manifest(spec.id, parsed, media_roots, data_dir, spec.modality, task.threads or 1, cache, thorough)
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
    report = {
        **summarize(frame, info),
        "probe": "every frame" if thorough else "first and last frame",
        "unverified_downloads": unverified_downloads(Path(task.ready)) if task.ready else [],
    }
    write_manifest(frame, info, Path(task.manifest))
    atomic_write_json(Path(task.report), report)
    logger.info("%s: %d items, %d undecodable %s", spec.id, report["items"], report["undecodable"], report["error_kinds"] or "")
