"""Classification annotation formats other than Kinetics: SSv2, UCF101, Moments in Time, COIN and
the generic `path,label` lists of VideoMAE / UMT / InternVideo2."""

from __future__ import annotations

from pathlib import Path

from flux.data.annotations.base import (
    AnnotationFiles,
    AnnotationRecord,
    ParsedAnnotations,
    check_disjoint,
    class_names_from_file,
    load_json,
    malformed,
    parse_int,
    parse_number,
    read_csv_rows,
    read_lines,
    register,
)
from flux.errors import AnnotationError

SUBSET_TO_SPLIT = {"training": "train", "validation": "val", "testing": "test"}


def check_unique(path: Path, line: int, sample_id: str, seen: dict[str, int]) -> None:
    if sample_id in seen:
        raise malformed(path, line, f"sample '{sample_id}' repeats line {seen[sample_id]}", "remove the duplicate")
    seen[sample_id] = line


def check_unique_item(path: Path, position: int, sample_id: str, seen: dict[str, int]) -> None:
    if sample_id in seen:
        raise AnnotationError(
            f"{path}: item {position}: sample '{sample_id}' repeats item {seen[sample_id]}; remove the duplicate"
        )
    seen[sample_id] = position


def strip_placeholders(template: str) -> str:
    return template.replace("[", "").replace("]", "")


@register("ssv2_json")
def parse_ssv2(files: AnnotationFiles) -> ParsedAnnotations:
    """Something-Something V2: `labels` maps template -> "index"; split files list {id, template, ...}.

    As SlowFast does, the template's brackets are removed before the lookup; the test file has ids only.
    """
    labels_path = files.path("labels")
    mapping = load_json(labels_path)
    if not isinstance(mapping, dict) or not mapping:
        raise malformed(labels_path, 1, "expected a JSON object {template: index}", "use something-something-v2-labels.json")
    by_index: dict[int, str] = {}
    for template, index in mapping.items():
        position = parse_int(labels_path, f"template '{template}'", index, "index")
        if position in by_index:
            raise malformed(labels_path, 1, f"index {position} used twice", "use the official labels file")
        by_index[position] = template
    if sorted(by_index) != list(range(len(by_index))):
        raise malformed(labels_path, 1, "label indices are not 0..N-1", "use the official labels file")
    class_names = [by_index[position] for position in range(len(by_index))]
    known = set(class_names)
    records: list[AnnotationRecord] = []
    for split in files.split_roles():
        path = files.path(split)
        items = load_json(path)
        if not isinstance(items, list) or not items:
            raise malformed(path, 1, "expected a non-empty JSON list", "use the official split file")
        seen: dict[str, int] = {}
        for position, item in enumerate(items):
            if not isinstance(item, dict) or "id" not in item:
                raise AnnotationError(f"{path}: item {position} has no 'id'; use the official split file")
            sample_id = str(item["id"])
            check_unique_item(path, position, sample_id, seen)
            label = None
            if "template" in item:
                label = strip_placeholders(str(item["template"]))
                if label not in known:
                    raise AnnotationError(
                        f"{path}: item {position} (id {sample_id}) has template '{item['template']}' that is not in "
                        f"{labels_path}; use the labels file of the same release"
                    )
            records.append(
                AnnotationRecord(
                    sample_id=sample_id,
                    split=split,
                    media=f"{sample_id}.webm",
                    alt_media=(f"{sample_id}.mp4",),
                    label_name=label,
                    captions=(str(item["label"]),) if "label" in item else (),
                )
            )
    return ParsedAnnotations(records, class_names)


@register("ucf101_splits")
def parse_ucf101(files: AnnotationFiles) -> ParsedAnnotations:
    """UCF101 official splits: classInd `<1-based id> <Class>`, trainlist `<Class>/<video>.avi <id>`,
    testlist `<Class>/<video>.avi` (the class is the folder)."""
    classes_path = files.path("classes")
    class_names: list[str] = []
    for line, text in read_lines(classes_path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isascii() or not parts[0].isdigit() or int(parts[0]) != len(class_names) + 1:
            raise malformed(
                classes_path, line, f"expected '{len(class_names) + 1} <ClassName>', got '{text}'", "use classInd.txt"
            )
        class_names.append(parts[1])
    known = set(class_names)
    records: list[AnnotationRecord] = []
    for split in files.split_roles():
        path = files.path(split)
        seen: dict[str, int] = {}
        for line, text in read_lines(path):
            parts = text.split()
            if len(parts) not in (1, 2) or "/" not in parts[0]:
                raise malformed(path, line, f"expected '<Class>/<video>.avi [<id>]', got '{text}'", "use the official split file")
            folder, name = parts[0].split("/", 1)
            if folder not in known:
                raise malformed(path, line, f"class folder '{folder}' is not in {classes_path.name}", "use matching split files")
            if len(parts) == 2:
                label_id = parse_int(path, line, parts[1], "label id")
                if not 1 <= label_id <= len(class_names):
                    raise malformed(path, line, f"label id {label_id} outside 1..{len(class_names)}", "use matching split files")
                if class_names[label_id - 1] != folder:
                    raise malformed(
                        path, line, f"label id {label_id} disagrees with folder '{folder}'", "use matching split files"
                    )
            sample_id = Path(name).stem
            check_unique(path, line, sample_id, seen)
            records.append(AnnotationRecord(sample_id=sample_id, split=split, media=parts[0], label_name=folder))
    return ParsedAnnotations(records, class_names)


@register("mit_csv")
def parse_moments_in_time(files: AnnotationFiles) -> ParsedAnnotations:
    """Moments in Time: `classes` has one name per line (or `name,index`); split CSVs have
    `<path>,<label>[,agree,disagree]` rows with paths relative to the split's media folder."""
    classes_path = files.path("classes")
    class_names = []
    for line, text in read_lines(classes_path):
        name, _, index = text.partition(",")
        if index and parse_int(classes_path, line, index.strip(), "class index") != len(class_names):
            raise malformed(classes_path, line, f"index {index} out of order", "use the official category file")
        class_names.append(name.strip())
    known = set(class_names)
    media_prefix = files.options.get("media_prefix", {})
    records: list[AnnotationRecord] = []
    for split in files.split_roles():
        path = files.path(split)
        prefix = str(media_prefix.get(split, "")) if isinstance(media_prefix, dict) else ""
        seen: dict[str, int] = {}
        for line, fields in read_csv_rows(path):
            if len(fields) < 2:
                raise malformed(path, line, "expected at least `path,label`", "use the official split CSV")
            media, label = fields[0], fields[1]
            if label not in known:
                raise malformed(path, line, f"label '{label}' is not in {classes_path.name}", "use the matching category file")
            check_unique(path, line, media, seen)
            records.append(
                AnnotationRecord(sample_id=media.rsplit(".", 1)[0], split=split, media=f"{prefix}{media}", label_name=label)
            )
    return ParsedAnnotations(records, class_names)


def coin_class_names(files: AnnotationFiles, database: dict) -> list[str]:
    """Task classes ordered by COIN's target id (`recipe_type`), from the taxonomy when given."""
    taxonomy = files.optional_path("taxonomy")
    if taxonomy is not None:
        import pandas as pd

        sheet = pd.read_excel(taxonomy, sheet_name="target_action_mapping")
        pairs = sheet[["Target Id", "Target Label"]].drop_duplicates().sort_values("Target Id")
        ids = pairs["Target Id"].tolist()
        if ids != list(range(len(ids))):
            raise AnnotationError(f"{taxonomy}: target ids are not 0..N-1; use the official taxonomy.xlsx")
        return [str(label) for label in pairs["Target Label"]]
    by_id: dict[int, str] = {}
    for video_id, entry in database.items():
        recipe = parse_int(files.path("annotations"), f"database entry '{video_id}'", entry["recipe_type"], "recipe_type")
        name = str(entry["class"])
        if by_id.setdefault(recipe, name) != name:
            raise AnnotationError(f"{files.path('annotations')}: video {video_id}: recipe_type {recipe} names two classes")
    return [by_id[index] for index in sorted(by_id)]


@register("coin_json")
def parse_coin(files: AnnotationFiles) -> ParsedAnnotations:
    """COIN.json: `database` keyed by YouTube id with `class`, `recipe_type`, `subset`, `start`, `end`.

    Task-level classification (180 classes), as FluxViT evaluates COIN; steps stay in the JSON.
    """
    path = files.path("annotations")
    document = load_json(path)
    database = document.get("database") if isinstance(document, dict) else None
    if not isinstance(database, dict) or not database:
        raise malformed(path, 1, "expected an object with a non-empty 'database'", "use the official COIN.json")
    class_names = coin_class_names(files, database)
    known = set(class_names)
    records = []
    for video_id, entry in database.items():
        try:
            subset, label = str(entry["subset"]), str(entry["class"])
        except (KeyError, TypeError):
            raise AnnotationError(
                f"{path}: database entry '{video_id}' lacks 'subset' or 'class'; use the official COIN.json"
            ) from None
        if subset not in SUBSET_TO_SPLIT or label not in known:
            raise AnnotationError(f"{path}: database entry '{video_id}': unknown subset '{subset}' or class '{label}'")
        where = f"database entry '{video_id}'"
        recipe = parse_int(path, where, entry.get("recipe_type", class_names.index(label)), "recipe_type")
        if not 0 <= recipe < len(class_names) or class_names[recipe] != label:
            expected = class_names[recipe] if 0 <= recipe < len(class_names) else "out of range"
            raise AnnotationError(
                f"{path}: database entry '{video_id}': class '{label}' but recipe_type {recipe} is '{expected}'; "
                f"use the taxonomy of the same COIN release"
            )
        records.append(
            AnnotationRecord(
                sample_id=video_id,
                split=SUBSET_TO_SPLIT[subset],
                media=f"{video_id}.mp4",
                label_name=label,
                start_sec=parse_number(path, where, entry["start"], "start") if "start" in entry else None,
                end_sec=parse_number(path, where, entry["end"], "end") if "end" in entry else None,
            )
        )
    return ParsedAnnotations(records, class_names)


@register("path_label_csv")
def parse_path_label(files: AnnotationFiles) -> ParsedAnnotations:
    """The `path<sep>label` lists of VideoMAE / UMT / InternVideo2 / FluxViT (integer labels).

    Options: `separator` (default ','; SlowFast and VideoMAE use ' '), `header` (default false).
    Class names come from the `classes` label map when given, else are the ids as strings.
    """
    separator = str(files.options.get("separator", ","))
    has_header = bool(files.options.get("header", False))
    classes_path = files.optional_path("classes")
    class_names = class_names_from_file(classes_path) if classes_path else None
    records = []
    max_label = -1
    for split in files.split_roles():
        path = files.path(split)
        seen: dict[str, int] = {}
        rows = read_csv_rows(path, delimiter=separator)
        for position, (line, fields) in enumerate(rows):
            if has_header and position == 0:
                continue
            fields = [value for value in fields if value] if separator == " " else fields
            if len(fields) < 2:
                raise malformed(path, line, f"expected '<path>{separator}<integer label>'", "fix the row")
            media, label = fields[0], parse_int(path, line, fields[-1], "label")
            if label < 0 or (class_names is not None and label >= len(class_names)):
                raise malformed(path, line, f"label {label} out of range", "check the number of classes")
            check_unique(path, line, media, seen)
            max_label = max(max_label, label)
            name = class_names[label] if class_names else str(label)
            records.append(AnnotationRecord(sample_id=media.rsplit(".", 1)[0], split=split, media=media, label_name=name))
    if class_names is None:
        class_names = [str(index) for index in range(max_label + 1)]
    check_disjoint(records, files)
    return ParsedAnnotations(records, class_names)
