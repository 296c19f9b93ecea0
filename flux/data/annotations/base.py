"""The one record type every annotation parser produces, and the parser registry.

A parser reads a dataset's published annotation files (in their original format) and returns
`ParsedAnnotations`; the indexer turns records into manifest rows. Parsers never touch media.
"""

from __future__ import annotations

import csv
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
    start_sec: float | None = None
    end_sec: float | None = None
    source: str | None = None  # derived datasets: id of the dataset whose media holds the file
    alt_media: tuple[str, ...] = field(default=())  # other names the same file commonly has


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
                f"{path}: annotation file for role '{role}' does not exist; run `flux download` "
                f"for this dataset (or `dvc pull data.dvc`) and check `annotations.files`"
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


def read_csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (1-based line number, fields), skipping blank lines; tolerant of CRLF and quoting."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        for fields in reader:
            if not fields or all(not value.strip() for value in fields):
                continue
            yield reader.line_num, [value.strip() for value in fields]


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped line) for non-empty lines; CRLF-safe."""
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if stripped:
                yield number, stripped


def malformed(path: Path, line: int, problem: str, fix: str) -> AnnotationError:
    return AnnotationError(f"{path}:{line}: {problem}; {fix}")


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
