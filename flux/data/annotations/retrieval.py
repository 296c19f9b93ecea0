"""Video-text retrieval annotation formats, read in the layouts their publishers ship.

One record per media item with all of its captions, stripped of surrounding whitespace only and in
the source's order. Sentences are never merged into paragraphs here: paragraph retrieval (DiDeMo,
ActivityNet) is a registry flag applied downstream, so the same records serve both protocols.
`start_sec`/`end_sec`, where set, are positions inside the media file (None = the whole file).

Formats (roles in parentheses; a role named after a split is that split's annotation file):

* `msrvtt`      (`test`) MSRVTT_JSFUSION_test.csv, one caption per video (1k-A); (`train`/`val`) a
                one-column `video_id` list (MSRVTT_train.9k.csv) whose captions come from (`captions`)
                MSRVTT_data.json.
* `didemo_json` (`train`/`val`/`test`) the original DiDeMo JSON lists; (`{split}_list`) optional video list.
* `anet_json`   (`train`/`val`/`test`) ActivityNet Captions `{"v_<id>": {duration, timestamps, sentences}}`;
                (`{split}_ids`) optional id list, `.json` list or one id a line.
* `lsmdc_tsv`   (`train`/`val`/`test`) LSMDC tab-separated `clip, 4 timestamps, sentence`, no header.
* `msvd`        (`train`/`val`/`test`) id lists; (`captions`) AllVideoDescriptions.txt or `{id: [captions]}` JSON.
* `vindlu_json` (`train`/`val`/`test`) VindLU / UMT / InternVideo2 lists of `{video|image, caption}`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from flux.data.annotations.base import (
    AnnotationFiles,
    AnnotationRecord,
    ParsedAnnotations,
    check_disjoint,
    load_json,
    malformed,
    read_csv_rows,
    read_lines,
    register,
    require_content,
)
from flux.errors import AnnotationError

logger = logging.getLogger(__name__)

_EXAMPLES = 5  # how many offending ids a log line or error message names


# --------------------------------------------------------------------------------------------------
# shared helpers


def _item_error(path: Path, where: str, problem: str, fix: str) -> AnnotationError:
    """JSON items have no useful line number; they are named by index or key instead."""
    return AnnotationError(f"{path}: {where}: {problem}; {fix}")


def _caption(value: object, problem_at: tuple[Path, str], fix: str) -> str:
    path, where = problem_at
    if not isinstance(value, str):
        raise _item_error(path, where, f"caption {value!r} is not a string", fix)
    text = value.strip()
    if not text:
        raise _item_error(path, where, "caption is empty", fix)
    return text


def _examples(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_EXAMPLES])
    return shown + (f", ... ({len(items) - _EXAMPLES} more)" if len(items) > _EXAMPLES else "")


def _read_text_ids(path: Path) -> list[tuple[int, str]]:
    """One id per line; returns (line, id). Duplicates and lines with spaces are errors."""
    require_content(path)
    entries: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, text in read_lines(path):
        if len(text.split()) != 1:
            raise malformed(path, line, f"expected one id per line, got '{text}'", "fix or drop the line")
        if text in seen:
            raise malformed(path, line, f"id '{text}' repeats line {seen[text]}", "remove the duplicate")
        seen[text] = line
        entries.append((line, text))
    if not entries:
        raise AnnotationError(f"{path}: lists no ids; re-download the list")
    return entries


def _read_json_ids(path: Path) -> list[tuple[int, str]]:
    """A JSON list of id strings; returns (item index, id)."""
    items = load_json(path)
    if not isinstance(items, list) or not items:
        raise AnnotationError(f"{path}: expected a non-empty JSON list of ids; re-download the list")
    entries: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise _item_error(path, f"item {index}", f"{item!r} is not an id string", "fix the list")
        name = item.strip()
        if name in seen:
            raise _item_error(path, f"item {index}", f"id '{name}' repeats item {seen[name]}", "remove the duplicate")
        seen[name] = index
        entries.append((index, name))
    return entries


def _read_ids(path: Path) -> list[str]:
    """An id list in either published form, chosen by extension (`.json` list, else one id a line)."""
    entries = _read_json_ids(path) if path.suffix.lower() == ".json" else _read_text_ids(path)
    return [name for _, name in entries]


def _restrict(annotated: Mapping[str, object], listed: list[str], list_path: Path, ann_path: Path) -> list[str]:
    """Keys to keep, in list order: listed and annotated. Both kinds of mismatch are logged with counts.

    A listed item without annotations is not an error: published lists are supersets of the videos that
    survived annotation (ActivityNet val_ids.json names 9 ids absent from val_1.json). It yields no record.
    """
    listed_set = set(listed)
    missing = [name for name in listed if name not in annotated]
    unlisted = [name for name in annotated if name not in listed_set]
    if missing:
        logger.warning(
            "%s: %d listed item(s) have no annotation in %s and get no record: %s",
            list_path,
            len(missing),
            ann_path.name,
            _examples(missing),
        )
    if unlisted:
        logger.warning(
            "%s: %d annotated item(s) are not in %s and are excluded: %s",
            ann_path,
            len(unlisted),
            list_path.name,
            _examples(unlisted),
        )
    return [name for name in listed if name in annotated]


def _require_splits(files: AnnotationFiles, allowed: tuple[str, ...]) -> list[str]:
    splits = [split for split in files.split_roles() if split in allowed]
    if not splits:
        raise AnnotationError(
            f"{files.root}: no split role ({', '.join(allowed)}) is configured; add one under "
            f"`annotations.files` of this dataset in config/datasets.yaml"
        )
    return splits


# --------------------------------------------------------------------------------------------------
# MSR-VTT


def _msrvtt_captions(path: Path) -> dict[str, list[str]]:
    """All captions of MSRVTT_data.json by video id, in file order."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise AnnotationError(f"{path}: expected an object with a 'sentences' list; use MSRVTT_data.json")
    captions: dict[str, list[str]] = {}
    for index, item in enumerate(data["sentences"]):
        where = f"sentences[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("video_id"), str) or "caption" not in item:
            raise _item_error(path, where, "needs 'video_id' (a string) and 'caption'", "use MSRVTT_data.json")
        text = _caption(item["caption"], (path, where), "fix or drop the sentence")
        captions.setdefault(item["video_id"].strip(), []).append(text)
    if not captions:
        raise AnnotationError(f"{path}: 'sentences' is empty; use the complete MSRVTT_data.json")
    return captions


def _msrvtt_test(path: Path) -> list[AnnotationRecord]:
    """The JSFusion 1k-A test csv: one caption per video, a repeated video is an error."""
    rows = read_csv_rows(path)
    header_line, header = next(rows, (0, []))
    if not header:
        raise AnnotationError(f"{path}: file is empty; re-download MSRVTT_JSFUSION_test.csv")
    if "video_id" not in header or "sentence" not in header:
        raise malformed(
            path,
            header_line,
            f"header {header} lacks 'video_id' or 'sentence'",
            "expected the header `key,vid_key,video_id,sentence`",
        )
    video_col, sentence_col = header.index("video_id"), header.index("sentence")
    records: list[AnnotationRecord] = []
    seen: dict[str, int] = {}
    for line, fields in rows:
        if len(fields) != len(header):
            raise malformed(path, line, f"{len(fields)} fields where the header has {len(header)}", "fix the row")
        video_id, sentence = fields[video_col], fields[sentence_col]
        if not video_id or not sentence:
            raise malformed(path, line, "empty video_id or sentence", "fix the row")
        if video_id in seen:
            raise malformed(
                path,
                line,
                f"video '{video_id}' repeats line {seen[video_id]} (1k-A has one caption a video)",
                "remove the duplicate",
            )
        seen[video_id] = line
        records.append(AnnotationRecord(sample_id=video_id, split="test", media=f"{video_id}.mp4", captions=(sentence,)))
    if not records:
        raise malformed(path, header_line, "header but no rows", "re-download MSRVTT_JSFUSION_test.csv")
    return records


def _msrvtt_id_list(path: Path) -> list[tuple[int, str]]:
    """MSRVTT_train.9k.csv / 7k.csv: one `video_id` column, with or without that header."""
    entries: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, fields in read_csv_rows(path):
        if len(fields) != 1:
            raise malformed(path, line, f"expected one column (video_id), got {len(fields)}", "fix the row")
        video_id = fields[0]
        if not entries and not seen and video_id == "video_id":
            seen[video_id] = line  # the header
            continue
        if video_id in seen:
            raise malformed(path, line, f"video '{video_id}' repeats line {seen[video_id]}", "remove the duplicate")
        seen[video_id] = line
        entries.append((line, video_id))
    if not entries:
        raise AnnotationError(f"{path}: lists no videos; re-download the MSR-VTT split list")
    return entries


@register("msrvtt")
def parse_msrvtt(files: AnnotationFiles) -> ParsedAnnotations:
    """MSR-VTT as the CLIP4Clip-style loaders use it: 1k-A test csv, train id list + MSRVTT_data.json."""
    records: list[AnnotationRecord] = []
    captions: dict[str, list[str]] | None = None
    for split in _require_splits(files, ("train", "val", "test")):
        path = files.path(split)
        if split == "test":
            records.extend(_msrvtt_test(path))
            continue
        if "captions" not in files.files:
            raise AnnotationError(
                f"{files.root}: MSR-VTT {split} list {path.name} needs the 'captions' role (MSRVTT_data.json); "
                f"add it under `annotations.files`"
            )
        captions_path = files.path("captions")
        if captions is None:
            captions = _msrvtt_captions(captions_path)
        for line, video_id in _msrvtt_id_list(path):
            if video_id not in captions:
                raise malformed(
                    path,
                    line,
                    f"video '{video_id}' has no caption in {captions_path}",
                    "use the complete MSRVTT_data.json of the same release",
                )
            records.append(
                AnnotationRecord(sample_id=video_id, split=split, media=f"{video_id}.mp4", captions=tuple(captions[video_id]))
            )
    check_disjoint(records, files)
    return ParsedAnnotations(records, None)


# --------------------------------------------------------------------------------------------------
# DiDeMo


def _didemo_key(video: str) -> str:
    """The video's identity: its name without the extension.

    The release spells one video with several extensions (test_data.json has 33 of its 1004 videos both
    as `.mov` and `.mp4`, say) and some names end in a bare dot; the stem is what stays the same.
    """
    stem, dot, _ = video.rpartition(".")
    return stem if dot else video


def _didemo_split(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """stem -> (spellings in order of appearance, descriptions in file order)."""
    items = load_json(path)
    if not isinstance(items, list) or not items:
        raise AnnotationError(f"{path}: expected a non-empty JSON list of moments; use the DiDeMo *_data.json")
    videos: dict[str, tuple[list[str], list[str]]] = {}
    fix = "fix or drop the item (the original DiDeMo *_data.json has both keys)"
    for index, item in enumerate(items):
        where = f"item {index}"
        if not isinstance(item, dict) or "video" not in item or "description" not in item:
            raise _item_error(path, where, "needs 'video' and 'description'", fix)
        video = item["video"]
        if not isinstance(video, str) or not _didemo_key(video.strip()):
            raise _item_error(path, where, f"'video' {video!r} is not a file name", fix)
        video = video.strip()
        text = _caption(item["description"], (path, f"{where} (video {video})"), fix)
        spellings, descriptions = videos.setdefault(_didemo_key(video), ([], []))
        if video not in spellings:
            spellings.append(video)
        descriptions.append(text)
    return videos


def _didemo_media(key: str, spellings: list[str]) -> tuple[str, tuple[str, ...]]:
    """First spelling as `media`; the others, plus the `.mp4` that UMT's re-encoded copies use, as alternatives.

    A name with a bare trailing dot keeps it (as published); the `.mp4` alternative gives the indexer a
    clean stem to resolve against.
    """
    media, *others = spellings
    alternatives = list(others)
    if f"{key}.mp4" not in spellings:
        alternatives.append(f"{key}.mp4")
    return media, tuple(alternatives)


@register("didemo_json")
def parse_didemo(files: AnnotationFiles) -> ParsedAnnotations:
    """DiDeMo moment annotations grouped into one record per video (sample_id = file name stem).

    With a `{split}_list`, records follow the list's order and media spelling; list entries without
    moments and annotated videos missing from the list are logged with counts and get no record.
    """
    records: list[AnnotationRecord] = []
    for split in _require_splits(files, ("train", "val", "test")):
        path = files.path(split)
        videos = _didemo_split(path)
        keys = list(videos)
        list_path = files.optional_path(f"{split}_list")
        if list_path is not None:
            listed: dict[str, str] = {}
            for line, name in _read_text_ids(list_path):
                key = _didemo_key(name)
                if key in listed:
                    raise malformed(
                        list_path,
                        line,
                        f"'{name}' is the same video as '{listed[key]}' (another extension)",
                        "remove the duplicate",
                    )
                listed[key] = name
            keys = _restrict(videos, list(listed), list_path, path)
            for key in keys:  # the list's spelling first
                spellings = videos[key][0]
                if listed[key] in spellings:
                    spellings.remove(listed[key])
                spellings.insert(0, listed[key])
        for key in keys:
            spellings, descriptions = videos[key]
            media, alternatives = _didemo_media(key, spellings)
            records.append(
                AnnotationRecord(sample_id=key, split=split, media=media, captions=tuple(descriptions), alt_media=alternatives)
            )
        if not keys:
            raise AnnotationError(f"{path}: no video is left after applying {list_path}; use files of one release")
    check_disjoint(records, files)
    return ParsedAnnotations(records, None)


# --------------------------------------------------------------------------------------------------
# ActivityNet Captions


def _anet_key(name: str) -> str:
    """Lists write ids with or without the `v_` prefix; annotations always with it."""
    return name if name.startswith("v_") else f"v_{name}"


@register("anet_json")
def parse_anet(files: AnnotationFiles) -> ParsedAnnotations:
    """ActivityNet Captions: one record per video over its whole duration; sentences in `sentences` order."""
    records: list[AnnotationRecord] = []
    for split in _require_splits(files, ("train", "val", "test")):
        path = files.path(split)
        data = load_json(path)
        if not isinstance(data, dict) or not data:
            raise AnnotationError(
                f'{path}: expected a non-empty JSON object {{"v_<id>": {{duration, timestamps, sentences}}}}; '
                f"use the ActivityNet Captions train.json / val_1.json / val_2.json"
            )
        videos: dict[str, tuple[float, tuple[str, ...]]] = {}
        for name, entry in data.items():
            where = f"key '{name}'"
            fix = "fix or drop the entry"
            key = _anet_key(name.strip())
            if key == "v_" or not isinstance(entry, dict):
                raise _item_error(path, where, "expected a video id mapping to an object", fix)
            sentences, duration = entry.get("sentences"), entry.get("duration")
            if not isinstance(sentences, list) or not sentences:
                raise _item_error(path, where, "'sentences' is missing or empty", fix)
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not 0 < duration < math.inf:
                raise _item_error(path, where, f"'duration' {duration!r} is not a positive number", fix)
            timestamps = entry.get("timestamps")
            if timestamps is not None and (not isinstance(timestamps, list) or len(timestamps) != len(sentences)):
                raise _item_error(path, where, "'timestamps' does not have one entry per sentence", fix)
            if key in videos:
                raise _item_error(path, where, f"video {key} is listed twice (with and without 'v_')", fix)
            captions = tuple(
                _caption(sentence, (path, f"{where} sentence {index}"), fix) for index, sentence in enumerate(sentences)
            )
            videos[key] = (float(duration), captions)
        keys = list(videos)
        ids_path = files.optional_path(f"{split}_ids")
        if ids_path is not None:
            listed = list(dict.fromkeys(_anet_key(name) for name in _read_ids(ids_path)))
            keys = _restrict(videos, listed, ids_path, path)
            if not keys:
                raise AnnotationError(f"{path}: no video is left after applying {ids_path}; use files of one release")
        for key in keys:
            duration, captions = videos[key]
            records.append(
                AnnotationRecord(
                    sample_id=key,
                    split=split,
                    media=f"{key}.mp4",
                    alt_media=(f"{key[2:]}.mp4",),
                    captions=captions,
                    start_sec=0.0,
                    end_sec=duration,
                )
            )
    check_disjoint(records, files)
    return ParsedAnnotations(records, None)


# --------------------------------------------------------------------------------------------------
# LSMDC

_LSMDC_TIME = r"\d{2}\.\d{2}\.\d{2}\.\d{3}"
_LSMDC_CLIP = re.compile(rf"^(?P<movie>.+)_(?P<start>{_LSMDC_TIME})-(?P<end>{_LSMDC_TIME})$")


def _lsmdc_seconds(stamp: str, path: Path, line: int, fix: str) -> float:
    """`HH.MM.SS.mmm` -> seconds."""
    if not re.fullmatch(_LSMDC_TIME, stamp):
        raise malformed(path, line, f"timestamp '{stamp}' is not HH.MM.SS.mmm", fix)
    hours, minutes, seconds, millis = (int(part) for part in stamp.split("."))
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


@register("lsmdc_tsv")
def parse_lsmdc(files: AnnotationFiles) -> ParsedAnnotations:
    """LSMDC: `clip \\t start_aligned \\t end_aligned \\t start_extracted \\t end_extracted \\t sentence`.

    A clip id is `<movie>_<start>-<end>` and MPII ships clips as `<movie>/<clip>.avi`; the flat
    `<clip>.avi` is the alternative. The clip file spans the *extracted* interval (at least 2 s; the aligned
    sentence interval lies inside it), so the record covers [0, extracted length] of that file.
    """
    records: list[AnnotationRecord] = []
    for split in _require_splits(files, ("train", "val", "test")):
        path = files.path(split)
        require_content(path)
        seen: dict[str, int] = {}
        fix = "use the LSMDC tab-separated file as published (no header)"
        for line, text in read_lines(path):
            fields = [field.strip() for field in text.split("\t")]
            if len(fields) != 6:
                raise malformed(
                    path, line, f"{len(fields)} tab-separated columns, expected 6 (clip, 4 timestamps, sentence)", fix
                )
            clip, *stamps, sentence = fields
            match = _LSMDC_CLIP.match(clip)
            if match is None:
                raise malformed(path, line, f"clip id '{clip}' is not '<movie>_HH.MM.SS.mmm-HH.MM.SS.mmm'", fix)
            seconds = [_lsmdc_seconds(stamp, path, line, fix) for stamp in stamps]
            aligned_start, aligned_end, extracted_start, extracted_end = seconds
            if not (extracted_start <= aligned_start < aligned_end <= extracted_end):
                raise malformed(path, line, f"timestamps {stamps} do not form a clip around its sentence", fix)
            if not sentence:
                raise malformed(path, line, "empty sentence", fix)
            if clip in seen:
                raise malformed(path, line, f"clip '{clip}' repeats line {seen[clip]}", "remove the duplicate")
            seen[clip] = line
            records.append(
                AnnotationRecord(
                    sample_id=clip,
                    split=split,
                    media=f"{match['movie']}/{clip}.avi",
                    alt_media=(f"{clip}.avi",),
                    captions=(sentence,),
                    start_sec=0.0,
                    end_sec=round(extracted_end - extracted_start, 3),
                )
            )
        if not seen:
            raise AnnotationError(f"{path}: no clips listed; re-download the LSMDC file")
    check_disjoint(records, files)
    return ParsedAnnotations(records, None)


# --------------------------------------------------------------------------------------------------
# MSVD


def _msvd_captions(path: Path) -> dict[str, list[str]]:
    """`{id: [captions]}` JSON, or AllVideoDescriptions.txt lines `<id> <caption...>` (`#` = comment)."""
    captions: dict[str, list[str]] = {}
    if path.suffix.lower() == ".json":
        data = load_json(path)
        if not isinstance(data, dict) or not data:
            raise AnnotationError(f"{path}: expected a non-empty JSON object {{id: [captions]}}")
        for name, values in data.items():
            where = f"key '{name}'"
            values = [values] if isinstance(values, str) else values
            if not isinstance(values, list) or not values:
                raise _item_error(path, where, "expected a caption string or a non-empty list of them", "fix the entry")
            captions[name.strip()] = [
                _caption(value, (path, f"{where} caption {index}"), "fix the entry") for index, value in enumerate(values)
            ]
        return captions
    require_content(path)
    for line, text in read_lines(path):
        if text.startswith("#"):
            continue
        parts = text.split(maxsplit=1)
        if len(parts) != 2:
            raise malformed(path, line, f"expected '<video id> <caption>', got '{text}'", "fix or drop the line")
        captions.setdefault(parts[0], []).append(parts[1].strip())
    if not captions:
        raise AnnotationError(f"{path}: has only comments; use the complete AllVideoDescriptions.txt")
    return captions


@register("msvd")
def parse_msvd(files: AnnotationFiles) -> ParsedAnnotations:
    """MSVD: split id lists + one description file; every listed video must have captions."""
    captions_path = files.path("captions")
    captions = _msvd_captions(captions_path)
    records: list[AnnotationRecord] = []
    listed: set[str] = set()
    for split in _require_splits(files, ("train", "val", "test")):
        path = files.path(split)
        ids = _read_ids(path)
        missing = [video_id for video_id in ids if video_id not in captions]
        if missing:
            raise AnnotationError(
                f"{captions_path}: no captions for {len(missing)} video(s) of the {split} list {path}: "
                f"{_examples(missing)}; the caption file is incomplete, use the full MSVD descriptions"
            )
        listed.update(ids)
        records.extend(
            AnnotationRecord(sample_id=video_id, split=split, media=f"{video_id}.avi", captions=tuple(captions[video_id]))
            for video_id in ids
        )
    unlisted = [video_id for video_id in captions if video_id not in listed]
    if unlisted:
        logger.info("%s: %d captioned video(s) are in no configured split list", captions_path, len(unlisted))
    check_disjoint(records, files)
    return ParsedAnnotations(records, None)


# --------------------------------------------------------------------------------------------------
# VindLU / UMT / InternVideo2 JSON

_MEDIA_KEYS = ("video", "image")


@register("vindlu_json")
def parse_vindlu(files: AnnotationFiles) -> ParsedAnnotations:
    """`[{"video"|"image": path, "caption": str | [str]}]`; one record per media path.

    Repeats of a path are merged with their captions in order (COCO lists each image once per caption).
    A file uses one media key throughout: the registry, not the record, says a dataset's modality.
    """
    records: list[AnnotationRecord] = []
    for split in _require_splits(files, ("train", "val", "test")):
        path = files.path(split)
        items = load_json(path)
        if not isinstance(items, list) or not items:
            raise AnnotationError(f"{path}: expected a non-empty JSON list of {{video|image, caption}} items")
        captions: dict[str, list[str]] = {}  # sample_id -> captions, in item order
        media_of: dict[str, tuple[str, int]] = {}  # sample_id -> (media, index of its first item)
        file_key: tuple[str, int] | None = None
        fix = "each item needs exactly one of 'video' / 'image' and a 'caption'"
        for index, item in enumerate(items):
            where = f"item {index}"
            if not isinstance(item, dict):
                raise _item_error(path, where, "is not an object", fix)
            keys = [key for key in _MEDIA_KEYS if key in item]
            if len(keys) != 1:
                problem = "has both 'video' and 'image'" if keys else "has neither 'video' nor 'image'"
                raise _item_error(path, where, problem, fix)
            key = keys[0]
            if file_key is None:
                file_key = (key, index)
            elif key != file_key[0]:
                raise _item_error(
                    path,
                    where,
                    f"uses '{key}' but item {file_key[1]} uses '{file_key[0]}'",
                    "split images and videos into separate files (one modality per dataset)",
                )
            media = item[key]
            if not isinstance(media, str) or not media.strip():
                raise _item_error(path, where, f"'{key}' {media!r} is not a path", fix)
            media = media.strip()
            if "caption" not in item:
                raise _item_error(path, where, "has no 'caption'", fix)
            raw = item["caption"]
            values = [raw] if isinstance(raw, str) else raw
            if not isinstance(values, list) or not values:
                raise _item_error(path, where, "'caption' must be a string or a non-empty list of strings", fix)
            texts = [_caption(value, (path, f"{where} ({media})"), fix) for value in values]
            sample_id = str(PurePosixPath(media).with_suffix(""))
            first_media, first_index = media_of.setdefault(sample_id, (media, index))
            if first_media != media:
                raise _item_error(
                    path,
                    where,
                    f"'{media}' and '{first_media}' (item {first_index}) share the sample id '{sample_id}'",
                    "rename one of the files or drop the duplicate",
                )
            captions.setdefault(sample_id, []).extend(texts)
        merged = len(items) - len(captions)
        if merged:
            logger.info("%s: %d item(s) repeat a media path; their captions were merged", path, merged)
        records.extend(
            AnnotationRecord(sample_id=sample_id, split=split, media=media_of[sample_id][0], captions=tuple(texts))
            for sample_id, texts in captions.items()
        )
    check_disjoint(records, files)
    return ParsedAnnotations(records, None)
