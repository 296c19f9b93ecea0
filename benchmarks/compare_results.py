"""A refactor changes no number: compare two finished builds' tables and metrics, cell by cell.

    python benchmarks/compare_results.py BEFORE AFTER        # two checkouts (or copies) after `snakemake --cores 2`
    python benchmarks/compare_results.py BEFORE AFTER --added-ok   # a change that adds files or fields: listed

Every `results/tables/*.json` and `results/metrics/**/*.json` of BEFORE is compared with AFTER's, leaving out
what changes from run to run without being a result: provenance (git commit, host, library versions), the
configuration digest, and timings. Prints each file that differs (with the first differing path inside it) and
files only one side has; exits 1 if anything differs. CPU runs are deterministic, so any difference is real.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

NOT_RESULTS = ("provenance", "config_digest", "seconds", "train_seconds", "tokens_per_second")
PATTERNS = (("results/tables", "*.json"), ("results/metrics", "**/*.json"))


def results_only(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: results_only(item) for key, item in value.items() if key not in NOT_RESULTS}
    if isinstance(value, list):
        return [results_only(item) for item in value]
    return value


def first_difference(a: Any, b: Any, where: str = "", added: set[str] | None = None) -> str | None:
    """The first path where `a` and `b` differ. With `added`, keys only AFTER (`b`) has are collected there
    instead of counting as a difference (a change that adds fields moves no number)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a and added is not None:
                added.add(str(key))
                continue
            if key not in a or key not in b:
                return f"{where}/{key} (only one side)"
            found = first_difference(a[key], b[key], f"{where}/{key}", added)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b))
        return next((found for i, (x, y) in pairs if (found := first_difference(x, y, f"{where}[{i}]", added))), None)
    return None if a == b else f"{where or '/'}: {a!r} != {b!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument(
        "--added-ok", action="store_true", help="files and keys only AFTER has are listed, not counted as differences"
    )
    args = parser.parse_args()
    differences = compared = 0
    added: set[str] | None = set() if args.added_ok else None
    for folder, pattern in PATTERNS:
        names = {
            side: {path.relative_to(root) for path in (root / folder).glob(pattern)}
            for side, root in (("before", args.before), ("after", args.after))
        }
        for name in sorted(names["before"] ^ names["after"]):
            if added is not None and name in names["after"]:
                print(f"added (not counted): {name}")
                continue
            differences += 1
            print(f"only in {'before' if name in names['before'] else 'after'}: {name}")
        for name in sorted(names["before"] & names["after"]):
            compared += 1
            before, after = (results_only(json.loads((root / name).read_text())) for root in (args.before, args.after))
            found = first_difference(before, after, added=added)
            if found:
                differences += 1
                print(f"differs: {name} at {found}")
    if added:
        print(f"keys only after has (not counted): {', '.join(sorted(added))}")
    print(f"{compared} files compared, {differences} differences")
    raise SystemExit(1 if differences else 0)


if __name__ == "__main__":
    main()
