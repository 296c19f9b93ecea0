"""Chat benchmark and instruction-data formats (main Table 10), read in the layouts their publishers ship. Each record
carries what the chat evaluation or training needs in `details` (JSON):

* `mvbench_json`  (one role per task, its `json/<task>.json`) MVBench (OpenGVLab/MVBench; read as VideoChat2's
                  mvbench.ipynb reads it): `[{video, question, candidates, answer, start?, end?}]`; the task's
                  videos sit under `annotations.options.prefixes.<task>`; `start`/`end` (seconds) bound the tasks
                  listed in `annotations.options.bound`. details = {task, question, candidates, answer}.
* `dream1k_jsonl` (`test`) DREAM-1K's `DREAM-1k.jsonl` (bytedance/tarsier): the reference description in the
                  assistant message's `reference`, the reference events in `extra_info.events`, the video named by
                  `vid` (`<vid>.mp4`, as Tarsier's fill_in_video_file.ipynb names it). details = {events, subset}.
* `videochat2_it` (`train`/...) VideoChat2 instruction data: `[{video, QA: [{i, q, a}]}]`. details = {turns}.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from flux.data.annotations.base import (
    AnnotationFiles,
    AnnotationRecord,
    ParsedAnnotations,
    decoded_lines,
    load_json,
    malformed,
    parse_number,
    register,
)
from flux.errors import AnnotationError


def _error(path: Path, where: str, problem: str, fix: str = "fix the entry or re-download the file") -> AnnotationError:
    return AnnotationError(f"{path}: {where}: {problem}; {fix}")


def _text(path: Path, where: str, item: Mapping, key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _error(path, where, f"'{key}' {value!r} is not a non-empty string")
    return value.strip()


def _list(path: Path, what: str) -> list:
    items = load_json(path)
    if not isinstance(items, list) or not items:
        raise AnnotationError(f"{path}: expected a non-empty JSON list of {what}")
    return items


@register("mvbench_json")
def parse_mvbench(files: AnnotationFiles) -> ParsedAnnotations:
    prefixes = files.options.get("prefixes", {})
    bound = set(files.options.get("bound", []))
    records = []
    for task in files.files:
        path = files.path(task)
        for index, item in enumerate(_list(path, "{video, question, candidates, answer} items")):
            where = f"item {index}"
            if not isinstance(item, dict):
                raise _error(path, where, "is not an object")
            video, question, answer = (_text(path, where, item, key) for key in ("video", "question", "answer"))
            candidates = item.get("candidates")
            if (
                not isinstance(candidates, list)
                or len(candidates) < 2
                or not all(isinstance(c, str) and c.strip() for c in candidates)
            ):
                raise _error(path, where, f"'candidates' {candidates!r} is not a list of at least two option strings")
            candidates = [candidate.strip() for candidate in candidates]
            if answer not in candidates:
                raise _error(path, where, f"the answer {answer!r} is not one of the candidates {candidates}")
            start = end = None
            if task in bound:
                if "start" not in item or "end" not in item:
                    raise _error(
                        path, where, f"task '{task}' is bounded (annotations.options.bound) but the item has no start/end"
                    )
                start, end = (parse_number(path, where, item[key], key) for key in ("start", "end"))
                if end <= start:
                    raise _error(path, where, f"end {end} is not after start {start}")
            details = {"task": task, "question": question, "candidates": candidates, "answer": answer}
            records.append(
                AnnotationRecord(
                    sample_id=f"{task}/{index}",
                    split="test",
                    media=f"{prefixes.get(task, '')}{video}",
                    start_sec=start,
                    end_sec=end,
                    details=json.dumps(details),
                )
            )
    return ParsedAnnotations(records, None)


def _dream_reference(path: Path, line: int, messages: object) -> str:
    if not isinstance(messages, list) or len(messages) < 2:
        raise malformed(path, line, "'messages' is not a [user, assistant] list", "re-download DREAM-1k.jsonl")
    content = messages[1].get("content") if isinstance(messages[1], dict) else None
    references = [
        part["reference"] for part in content or [] if isinstance(part, dict) and isinstance(part.get("reference"), str)
    ]
    if len(references) != 1 or not references[0].strip():
        raise malformed(path, line, "the assistant message has no (single) non-empty 'reference'", "re-download DREAM-1k.jsonl")
    return references[0].strip()


@register("dream1k_jsonl")
def parse_dream1k(files: AnnotationFiles) -> ParsedAnnotations:
    records = []
    for split in files.split_roles():
        path = files.path(split)
        seen: set[str] = set()
        for line, text in enumerate(decoded_lines(path), start=1):
            if not text.strip():
                continue
            try:
                item = json.loads(text)
            except json.JSONDecodeError as error:
                raise malformed(path, line, f"invalid JSON ({error.msg})", "re-download DREAM-1k.jsonl") from None
            if not isinstance(item, dict) or "vid" not in item:
                raise malformed(path, line, "not an object with a 'vid'", "re-download DREAM-1k.jsonl")
            vid = str(item["vid"]).strip()
            if vid in seen:
                raise malformed(path, line, f"video {vid!r} appears twice", "remove the duplicate line")
            seen.add(vid)
            reference = _dream_reference(path, line, item.get("messages"))
            events = (item.get("extra_info") or {}).get("events")
            if not isinstance(events, list) or not all(isinstance(event, str) for event in events):
                raise malformed(
                    path, line, "'extra_info.events' is not a list of strings", "use the DREAM-1K release with reference events"
                )
            details = {"events": [event.strip() for event in events if event.strip()], "subset": str(item.get("dataset", ""))}
            records.append(
                AnnotationRecord(
                    sample_id=vid, split=split, media=f"{vid}.mp4", captions=(reference,), details=json.dumps(details)
                )
            )
    return ParsedAnnotations(records, None)


@register("videochat2_it")
def parse_videochat2_it(files: AnnotationFiles) -> ParsedAnnotations:
    records = []
    for split in files.split_roles():
        path = files.path(split)
        for index, item in enumerate(_list(path, "{video, QA} items")):
            where = f"item {index}"
            if not isinstance(item, dict):
                raise _error(path, where, "is not an object")
            video = _text(path, where, item, "video")
            turns = item.get("QA")
            if not isinstance(turns, list) or not turns:
                raise _error(path, where, "'QA' is not a non-empty list of {i, q, a} turns")
            parsed = []
            for number, turn in enumerate(turns):
                if not isinstance(turn, dict) or not all(isinstance(turn.get(key, ""), str) for key in "iqa"):
                    raise _error(path, f"{where} turn {number}", "is not an {i, q, a} object of strings")
                if not turn.get("q", "").strip() or not turn.get("a", "").strip():
                    raise _error(path, f"{where} turn {number}", "has an empty question or answer")
                parsed.append({"i": turn.get("i", ""), "q": turn["q"], "a": turn["a"]})
            records.append(
                AnnotationRecord(
                    sample_id=f"{split}/{index}",
                    split=split,
                    media=video,
                    details=json.dumps({"turns": parsed}),
                )
            )
    return ParsedAnnotations(records, None)
