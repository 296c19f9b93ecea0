"""Kinetics-710, built from the Kinetics-400/600/700 annotation CSVs as UniFormerV2 describes.

Training set: the union of the three training sets, de-duplicated by YouTube id (first occurrence in
K400, K600, K700 order wins), minus every id that appears in any validation or test split of any
release (leak removal). Validation set: the union of the three validation splits, de-duplicated by
YouTube id. Classes: names are unified through a rename table (classes were renamed between releases,
e.g. K400 `dying hair` = K600/K700 `dyeing hair`); the K400 classes come first in K400 order, the rest
follow either a reference label map (the published one, whose tail order is not derivable from any
rule) or alphabetically. Head maps give, for each release, the K710 index of each of its classes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from flux.data.annotations.base import AnnotationRecord
from flux.data.job_spec import Kinetics710Job, SourceJob
from flux.errors import AnnotationError
from flux.io import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KineticsRelease:
    dataset: str  # registry id of the release (e.g. kinetics400); becomes the clips' media source
    class_names: list[str]
    records: list[AnnotationRecord]


@dataclass
class Kinetics710:
    class_names: list[str]
    train: list[AnnotationRecord]
    val: list[AnnotationRecord]
    head_maps: dict[str, list[int]]
    report: dict = field(default_factory=dict)


def youtube_id(record: AnnotationRecord) -> str:
    # clip ids are `<youtube_id>_<start:06d>_<end:06d>`; YouTube ids may themselves contain '_'
    return record.sample_id.rsplit("_", 2)[0]


def merged_class_names(
    releases: Sequence[KineticsRelease], renames: Mapping[str, str], reference: Sequence[str] | None
) -> list[str]:
    first = [renames.get(name, name) for name in releases[0].class_names]
    if len(set(first)) != len(first):
        raise AnnotationError(f"{releases[0].dataset}: the rename table maps two classes onto one; fix `renames`")
    union = set(first)
    for release in releases[1:]:
        union.update(renames.get(name, name) for name in release.class_names)
    rest = sorted(union - set(first))
    if reference is None:
        return first + rest
    reference = list(reference)
    if set(reference) != union or len(reference) != len(union):
        only_derived = sorted(union - set(reference))[:5]
        only_reference = sorted(set(reference) - union)[:5]
        raise AnnotationError(
            f"the reference Kinetics-710 label map does not match the merged classes (derived only: "
            f"{only_derived}; reference only: {only_reference}); extend `renames` in config/datasets.yaml"
        )
    if reference[: len(first)] != first:
        raise AnnotationError("the reference Kinetics-710 label map does not start with the K400 classes in K400 order")
    return reference


def build_kinetics710(
    releases: Sequence[KineticsRelease],
    renames: Mapping[str, str] | None = None,
    reference_class_names: Sequence[str] | None = None,
) -> Kinetics710:
    """`releases` in precedence order (K400, K600, K700); each may lack splits (the report says so)."""
    renames = dict(renames or {})
    unknown_renames = sorted(set(renames) - {name for release in releases for name in release.class_names})
    if unknown_renames:
        raise AnnotationError(f"renames name classes that no release has: {unknown_renames}; fix `renames`")
    class_names = merged_class_names(releases, renames, reference_class_names)
    class_index = {name: position for position, name in enumerate(class_names)}

    held_out: dict[str, set[str]] = {}
    for release in releases:
        for record in release.records:
            if record.split != "train":
                held_out.setdefault(youtube_id(record), set()).add(f"{release.dataset}/{record.split}")

    def relabel(record: AnnotationRecord, release: KineticsRelease) -> AnnotationRecord:
        return replace(record, label_name=renames.get(record.label_name, record.label_name), source=release.dataset)

    report: dict = {"releases": {}, "dropped_overlap_by_split": Counter()}
    train: list[AnnotationRecord] = []
    kept_train_ids: set[str] = set()
    dropped_ids: set[str] = set()
    duplicate_rows = 0
    for release in releases:
        rows = [record for record in release.records if record.split == "train"]
        ids = {youtube_id(record) for record in rows}
        report["releases"][release.dataset] = {
            "splits": dict(sorted(Counter(record.split for record in release.records).items())),
            "train_unique_ids": len(ids),
        }
        for record in rows:
            video = youtube_id(record)
            if video in kept_train_ids or video in dropped_ids:
                duplicate_rows += 1
                continue
            if video in held_out:
                dropped_ids.add(video)
                report["dropped_overlap_by_split"].update(held_out[video])
                continue
            kept_train_ids.add(video)
            train.append(relabel(record, release))

    val: list[AnnotationRecord] = []
    val_ids: set[str] = set()
    for release in releases:
        for record in release.records:
            if record.split != "val" or record.label_name is None:
                continue
            video = youtube_id(record)
            if video not in val_ids:
                val_ids.add(video)
                val.append(relabel(record, release))

    head_maps = {release.dataset: [class_index[renames.get(name, name)] for name in release.class_names] for release in releases}
    report.update(
        classes=len(class_names),
        train_union_unique_ids=len(kept_train_ids) + len(dropped_ids),
        train_duplicate_rows_removed=duplicate_rows,
        train_ids_dropped_for_overlap=len(dropped_ids),
        train_clips=len(train),
        val_clips=len(val),
        dropped_overlap_by_split=dict(sorted(report["dropped_overlap_by_split"].items())),
        missing_train_splits=[release.dataset for release in releases if not any(r.split == "train" for r in release.records)],
    )
    return Kinetics710(class_names, train, val, head_maps, report)


def records_to_csv(records: Sequence[AnnotationRecord], split: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "youtube_id", "time_start", "time_end", "split", "source"])
    for record in records:
        writer.writerow(
            [
                record.label_name,
                youtube_id(record),
                int(record.source_start_sec),
                int(record.source_end_sec),
                split,
                record.source,
            ]
        )
    return buffer.getvalue()


def write_kinetics710(result: Kinetics710, dataset_dir: Path, files: Mapping[str, str]) -> dict[str, Path]:
    """Write the lists and label map where the registry's `annotations.files` says, plus the head maps
    and the build report beside the label map; each file atomically."""
    missing = [role for role in ("train", "val", "labels") if role not in files]
    if missing:
        raise AnnotationError(f"Kinetics-710 annotations.files lacks {missing}; add train, val and labels paths")
    labels = dataset_dir / files["labels"]
    outputs = {
        "train": dataset_dir / files["train"],
        "val": dataset_dir / files["val"],
        "labels": labels,
        "head_maps": labels.with_name("head_maps.json"),
        "report": labels.with_name("build_report.json"),
    }
    atomic_write_text(outputs["train"], records_to_csv(result.train, "train"))
    atomic_write_text(outputs["val"], records_to_csv(result.val, "val"))
    atomic_write_text(outputs["labels"], "".join(f"{name}\n" for name in result.class_names))
    atomic_write_text(outputs["head_maps"], json.dumps(result.head_maps, indent=1) + "\n")
    atomic_write_text(outputs["report"], json.dumps(result.report, indent=2, sort_keys=True) + "\n")
    return outputs


def load_release(source: SourceJob) -> KineticsRelease:
    """Parse one release's annotation CSVs as the registry describes them."""
    from flux.data.annotations import AnnotationFiles, parse
    from flux.data.registry import require_dataset_dir

    spec = source.dataset_spec()
    root = require_dataset_dir(spec, Path(source.dataset_dir))
    if "train" not in spec.annotation_files:
        raise AnnotationError(f"{spec.id}: Kinetics-710 needs its training list; add `train` under annotations.files")
    parsed = parse(spec.annotation_format, AnnotationFiles(root, spec.annotation_files, spec.annotation_options))
    return KineticsRelease(spec.id, list(parsed.class_names or []), parsed.records)


def run(job: dict) -> None:
    """`flux kinetics710`: fetch the reference files, merge the releases, write lists and maps, mark ready."""
    from flux.data.download import download
    from flux.data.registry import write_ready_marker

    task = Kinetics710Job.from_dict(job)
    spec = task.dataset_spec()
    dataset_dir = Path(task.dataset_dir)
    fetched = [{"path": remote.path, "sha256": download(remote, dataset_dir).sha256} for remote in spec.files]
    releases = [load_release(source) for source in task.sources]
    reference = None
    if spec.derived.reference_label_map:
        reference_path = dataset_dir / spec.derived.reference_label_map
        reference = [line.strip() for line in reference_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = build_kinetics710(releases, spec.derived.renames, reference)
    outputs = write_kinetics710(result, dataset_dir, spec.annotation_files)
    logger.info(
        "%s: %d classes, %d train clips (%d ids dropped for overlapping a val/test split), %d val clips",
        spec.id,
        len(result.class_names),
        len(result.train),
        result.report["train_ids_dropped_for_overlap"],
        len(result.val),
    )
    write_ready_marker(
        Path(task.ready),
        spec,
        dataset_dir,
        "derived",
        {"fetched": fetched, "outputs": {key: str(path) for key, path in outputs.items()}, "report": result.report},
    )
