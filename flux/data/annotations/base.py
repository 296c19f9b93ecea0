"""The one record type every annotation parser produces, and the parser registry.

A parser reads a dataset's published annotation files (in their original format) and returns
`ParsedAnnotations`; the indexer turns records into manifest rows. Parsers never touch media.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flux.errors import AnnotationError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class AnnotationRecord:
    """One media item as its annotation file describes it.

    `media` is the path relative to the dataset's media directory as the annotation names it; the
    indexer resolves it on disk (by stem when the extension differs, e.g. UCF101 lists `.avi`).
    """

    sample_id: str
    split: str
    media: str
    label_name: str | None = None
    captions: tuple[str, ...] = ()
    start_sec: float | None = None  # the segment to use, as positions in the media file (None: all of it)
    end_sec: float | None = None
    source_start_sec: float | None = None  # where a pre-cut clip sits in its source video (Kinetics)
    source_end_sec: float | None = None
    source: str | None = None  # derived datasets: id of the dataset whose media holds the file
    alt_media: tuple[str, ...] = field(default=())  # other names the same file commonly has
    details: str | None = None  # chat benchmarks: the item's question or reference events, as JSON (flux.data.annotations.chat)


@dataclass(frozen=True)
class ParsedAnnotations:
    records: list[AnnotationRecord]
    class_names: list[str] | None  # index = label id; None for caption-only datasets


@dataclass(frozen=True)
class AnnotationFiles:
    """Files of one dataset, keyed by role (`train`, `val`, `labels`, `captions`, ...).

    `options` carries format-specific settings from the registry (separator, split number, ...).
    """

    root: Path
    files: Mapping[str, str]
    options: Mapping[str, object] = field(default_factory=dict)

    def path(self, role: str) -> Path:
        if role not in self.files:
            raise AnnotationError(
                f"annotation role '{role}' is not configured for {self.root}: add it under "
                f"`annotations.files` of this dataset in config/datasets.yaml"
            )
        path = self.root / self.files[role]
        if not path.is_file():
            raise AnnotationError(
                f"{path}: annotation file for role '{role}' does not exist; check `annotations.files` of this "
                f"dataset in config/datasets.yaml, then fetch the dataset again (`flux download`, `flux synth` or "
                f"`flux kinetics710` as its source says, or `dvc pull data.dvc`)"
            )
        return path

    def optional_path(self, role: str) -> Path | None:
        return self.path(role) if role in self.files else None

    def split_roles(self) -> list[str]:
        return [split for split in SPLITS if split in self.files]


Parser = Callable[[AnnotationFiles], ParsedAnnotations]
PARSERS: dict[str, Parser] = {}


def register(name: str) -> Callable[[Parser], Parser]:
    def decorator(function: Parser) -> Parser:
        if name in PARSERS:
            raise ValueError(f"annotation format '{name}' registered twice")
        PARSERS[name] = function
        return function

    return decorator


def parse(format_name: str, files: AnnotationFiles) -> ParsedAnnotations:
    if format_name not in PARSERS:
        known = ", ".join(sorted(PARSERS))
        raise AnnotationError(f"unknown annotation format '{format_name}' (known: {known})")
    return PARSERS[format_name](files)


def not_utf8(path: Path, line: int, error: UnicodeDecodeError) -> AnnotationError:
    return malformed(path, line, f"not UTF-8 text ({error.reason})", "re-download the file or convert it to UTF-8")


def decoded_lines(path: Path) -> Iterator[str]:
    """The file's lines as text (endings kept), decoded one by one so a bad byte is reported at its line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise not_utf8(path, number, error) from None
            yield text.removeprefix("\ufeff") if number == 1 else text


STRAY_QUOTE = "a stray quote opens a field that runs on: remove it (no field of these files spans lines)"


def read_csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, fields), skipping blank lines; tolerant of CRLF and quoting. A record that
    spans lines (an unbalanced quote swallowing the rows after it; in a large file, until the csv module's field
    limit) is an error at the line where it starts."""
    reader = csv.reader(decoded_lines(path), delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise malformed(path, start, f"unreadable CSV record ({error})", STRAY_QUOTE) from None
        if reader.line_num > start and any("\n" in value for value in fields):
            raise malformed(path, start, f"a quoted field opened here runs to line {reader.line_num}", STRAY_QUOTE)
        if not fields or all(not value.strip() for value in fields):
            continue
        yield reader.line_num, [value.strip() for value in fields]


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped line) for non-empty lines; CRLF-safe."""
    for number, line in enumerate(decoded_lines(path), start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def require_content(path: Path) -> None:
    """Empty files get their own message (a JSON decoder would only say 'Expecting value')."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return
    raise AnnotationError(f"{path}: file is empty; re-download it (or `dvc pull data.dvc`)")


def load_json(path: Path) -> object:
    """Parse a JSON annotation file; empty, non-UTF-8 and invalid files get file:line errors."""
    require_content(path)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except RecursionError:
        problem = "JSON nested deeper than any annotation file is"
        raise malformed(path, 1, problem, "this is not an annotation file; re-download it") from None
    except json.JSONDecodeError as error:
        problem = f"invalid JSON ({error.msg} at column {error.colno})"
        raise malformed(path, error.lineno, problem, "re-download the file") from None
    except UnicodeDecodeError as error:
        with open(path, "rb") as handle:
            line = handle.read(error.start).count(b"\n") + 1
        raise not_utf8(path, line, error) from None


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_int(path: Path, line: int | str, text: object, what: str) -> int:
    """An integer written in ASCII digits (Python's int() also takes other scripts' digits, and a JSON file may
    hold a number or a string); anything else is an error at `line` (a line number, or where in a JSON file)."""
    if isinstance(text, bool) or not (isinstance(text, int) or (isinstance(text, str) and _INTEGER.fullmatch(text.strip()))):
        raise malformed(path, line, f"{what} {text!r} is not an integer", "fix the entry")
    return int(text)


def parse_number(path: Path, line: int | str, text: object, what: str) -> float:
    """A finite decimal number (`1e400` overflows to infinity and `nan` compares false: both refused)."""
    valid = isinstance(text, (int, float)) and not isinstance(text, bool)
    valid = valid or (isinstance(text, str) and _NUMBER.fullmatch(text.strip()) is not None)
    value = float(text) if valid else math.nan
    if not math.isfinite(value):
        raise malformed(path, line, f"{what} {text!r} is not a finite number", "fix the entry")
    return value


def malformed(path: Path, line: int, problem: str, fix: str) -> AnnotationError:
    return AnnotationError(f"{path}:{line}: {problem}; {fix}")


def check_disjoint(records: list[AnnotationRecord], files: AnnotationFiles) -> None:
    """The same media in two splits is a leak (and two records with one sample_id): refuse it."""
    split_of: dict[str, str] = {}
    for record in records:
        other = split_of.setdefault(record.sample_id, record.split)
        if other != record.split:
            raise AnnotationError(
                f"{files.root}: '{record.sample_id}' is in both the {other} and the {record.split} split "
                f"({files.files.get(other)}, {files.files.get(record.split)}); use split files of one release"
            )


def class_names_from_file(path: Path) -> list[str]:
    """A label map with one class name per line (index = line order), duplicates rejected."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for number, name in read_lines(path):
        if name in seen:
            raise malformed(path, number, f"class '{name}' repeats line {seen[name]}", "remove the duplicate")
        seen[name] = number
        names.append(name)
    return names
