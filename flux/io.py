"""Atomic file writes: a result is either complete or absent, never half-written."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Results are shared (a cluster's data directory): give them the permissions a plain open() would,
# not mkstemp's owner-only 0600.
FILE_MODE = 0o666 & ~_current_umask()
DIRECTORY_MODE = 0o777 & ~_current_umask()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(temporary, FILE_MODE)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.replace(temporary_path, path)
    finally:
        temporary_path.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, payload: object) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def csv_text(rows: list[dict], fieldnames: list[str] | None = None) -> str:
    """Rows as CSV text (header first, `\\n` line ends): every table's `.csv` beside its `.tex` and `.json`."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fieldnames or (list(rows[0]) if rows else []), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
