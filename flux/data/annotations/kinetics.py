"""Kinetics-400/600/700 (and the derived Kinetics-710) annotation CSVs.

Official layout: header `label,youtube_id,time_start,time_end,split[,is_cc]`; test files may have no
label column. Clips are conventionally stored as `<youtube_id>_<start:06d>_<end:06d>.mp4`
(ActivityNet crawler, CVDF) or `<youtube_id>.mp4` (OpenDataLab / mmaction2 copies); both names are
offered to the media resolver. Kinetics-710 lists add a `source` column naming the Kinetics release
whose media directory holds the clip.
"""

from __future__ import annotations

from pathlib import Path

from flux.data.annotations.base import (
    AnnotationFiles,
    AnnotationRecord,
    ParsedAnnotations,
    check_disjoint,
    class_names_from_file,
    malformed,
    parse_number,
    read_csv_rows,
    register,
)

REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")


def clip_id(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}"


def read_kinetics_csv(path: Path, split: str) -> list[AnnotationRecord]:
    rows = read_csv_rows(path)
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise malformed(path, 1, "the file is empty", "re-download the annotation CSV") from None
    columns = {name: position for position, name in enumerate(header)}
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise malformed(
            path,
            header_line,
            f"header {header} lacks column(s) {missing}",
            "expected the official Kinetics header `label,youtube_id,time_start,time_end,split`",
        )
    records: list[AnnotationRecord] = []
    seen: dict[str, int] = {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise malformed(path, line, f"{len(fields)} fields where the header has {len(header)}", "fix or drop the row")
        youtube_id = fields[columns["youtube_id"]]
        start = int(parse_number(path, line, fields[columns["time_start"]], "time_start"))
        end = int(parse_number(path, line, fields[columns["time_end"]], "time_end"))
        if not youtube_id or end <= start:
            raise malformed(path, line, f"invalid clip '{youtube_id}' [{start}, {end}]", "fix the row")
        sample_id = clip_id(youtube_id, start, end)
        if sample_id in seen:
            raise malformed(path, line, f"clip {sample_id} repeats line {seen[sample_id]}", "remove the duplicate")
        seen[sample_id] = line
        label = fields[columns["label"]] if "label" in columns else None
        source = fields[columns["source"]] if "source" in columns else None
        records.append(
            AnnotationRecord(
                sample_id=sample_id,
                split=split,
                media=f"{sample_id}.mp4",
                alt_media=(f"{youtube_id}.mp4",),
                label_name=label or None,
                source_start_sec=float(start),
                source_end_sec=float(end),
                source=source or None,
            )
        )
    if not records:
        raise malformed(path, header_line, "no clips listed", "re-download the annotation CSV")
    return records


@register("kinetics_csv")
def parse_kinetics_csv(files: AnnotationFiles) -> ParsedAnnotations:
    """Class order: the `labels` file when configured, else the alphabetical label set (the mmaction2 maps)."""
    records: list[AnnotationRecord] = []
    for split in files.split_roles():
        records.extend(read_kinetics_csv(files.path(split), split))
    check_disjoint(records, files)
    labels_path = files.optional_path("labels")
    observed = sorted({record.label_name for record in records if record.label_name is not None})
    if labels_path is None:
        return ParsedAnnotations(records, observed)
    class_names = class_names_from_file(labels_path)
    unknown = sorted(set(observed) - set(class_names))
    if unknown:
        raise malformed(
            labels_path,
            1,
            f"{len(unknown)} label(s) used in the CSVs are not in this label map (e.g. {unknown[:3]})",
            "use the label map of the same Kinetics release",
        )
    return ParsedAnnotations(records, class_names)
