"""Table layouts of config/tables.yaml expanded into columns and rows (pure: no metrics are read here).

A table is a grid: label columns, then value columns; a value cell names a run (by the row's slot), a
protocol result key and a metric. `expand` multiplies a row or column over listed values; `blocks` build the
grid-style tables (main Table 1, supplementary Tables 1-2): one run, a row per input, summary rows. Row ids
after expansion (`flux_s.2048`, `direct8.12`, `direct8.mean`) key the paper numbers.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flux.errors import ConfigError
from flux.eval.protocols import unmasked_frames

ANY_SLOT = "*"  # a block's run fills every column
DIRECTIONS = {"t2v": "T2V", "v2t": "V2T"}
SUMMARY_LABELS = {"mean": "Avg", "max": "Max"}


@dataclass(frozen=True)
class Column:
    id: str
    header: str
    group: str | None
    slot: str
    role: str | None
    key: str
    metric: str
    variables: Mapping[str, Any]
    summary: str | None = None  # a row-summary column: `mean` or `max` over the row's value cells


@dataclass(frozen=True)
class Row:
    id: str
    labels: tuple[str, ...]  # templates
    runs: Mapping[str, tuple[str, ...]]  # slot -> runs (several: seeds, reported as mean and std)
    variables: Mapping[str, Any]
    source: str  # the row or block entry it came from (rules between sources)
    paper_only: bool = False
    key: str | None = None
    keys: Mapping[str, str] = field(default_factory=dict)  # column id -> key, over `key` and the column's
    note: str | None = None  # LaTeX, in the footnote after the row's name: why its cells read other keys
    summary: str | None = None  # a block summary row: `mean` or `max` over the block's data rows
    members: tuple[str, ...] = field(default_factory=tuple)  # a summary row's data rows
    blank: tuple[str, ...] = ()  # columns the paper leaves blank for this row (not ∅: no such input exists)


def fill(template: str, variables: Mapping[str, Any], where: str) -> str:
    """`template` with `{name}` filled; an unknown name is a configuration error naming the place."""
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = sorted(names - set(variables))
    if missing:
        raise ConfigError(f"{where}: template '{template}' uses {missing}, which this cell does not define")
    return template.format(**variables)


def _combinations(expand: Mapping[str, list] | None) -> list[dict[str, Any]]:
    if not expand:
        return [{}]
    names = list(expand)
    return [dict(zip(names, values)) for values in itertools.product(*(expand[name] for name in names))]


def derived(variables: Mapping[str, Any], role_names: Mapping[str, str]) -> dict[str, Any]:
    """Names a template may use beyond the expanded ones."""
    extra: dict[str, Any] = {}
    if "budget" in variables:
        extra["frames"] = unmasked_frames(int(variables["budget"]))
        extra["setting"] = f"{extra['frames']}x224@{variables['budget']}"
    if "direction" in variables:
        extra["direction_name"] = DIRECTIONS[variables["direction"]]
    if "role" in variables:
        extra["role_name"] = role_names.get(variables["role"], variables["role"])
    return {**extra, **variables}


def columns_of(table: str, layout: Mapping[str, Any]) -> list[Column]:
    role_names = layout.get("role_names", {})
    columns = []
    for entry in layout["columns"]:
        for values in _combinations(entry.get("expand")):
            variables = derived(values, role_names)
            where = f"tables.{table}.columns.{entry['id']}"
            columns.append(
                Column(
                    id=fill(entry["id"], variables, where)
                    + ("_" + "_".join(map(str, values.values())) if values and "{" not in entry["id"] else ""),
                    header=fill(entry["header"], variables, where),
                    group=fill(entry["group"], variables, where) if "group" in entry else None,
                    slot=entry.get("run", ANY_SLOT),
                    role=fill(entry["role"], variables, where) if "role" in entry else None,
                    key=entry["key"],
                    metric=entry["metric"],
                    variables=variables,
                )
            )
    summary = layout.get("row_summary")
    if summary:
        columns.append(Column(summary["id"], summary["header"], None, ANY_SLOT, None, "", "", {}, summary=summary["reduce"]))
    return columns


def _runs(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def rows_of(table: str, layout: Mapping[str, Any]) -> list[Row]:
    role_names = layout.get("role_names", {})
    column_ids = [column.id for column in columns_of(table, layout)]
    rows: list[Row] = []
    for entry in layout.get("rows", []):
        unknown = sorted(set(entry.get("keys", {})) - set(column_ids))
        if unknown:
            raise ConfigError(
                f"tables.{table}.rows.{entry['id']}.keys: unknown column(s) {unknown}; the table's columns are "
                f"{', '.join(column_ids)}"
            )
        for values in _combinations(entry.get("expand")):
            suffix = "".join(f".{value}" for value in values.values())
            rows.append(
                Row(
                    id=entry["id"] + suffix,
                    labels=tuple(entry["labels"]),
                    runs={slot: _runs(run) for slot, run in entry.get("runs", {}).items()},
                    variables=derived(values, role_names),
                    source=entry["id"],
                    paper_only=bool(entry.get("paper_only", False)),
                    key=entry.get("key"),
                    keys=dict(entry.get("keys", {})),
                    note=entry.get("note"),
                )
            )
    for block in layout.get("blocks", []):
        head = () if block.get("single_label") else (block["label"],)
        blank = tuple(block.get("blank", ()))
        unknown = sorted(set(blank) - set(column_ids))
        if unknown:
            raise ConfigError(
                f"tables.{table}.blocks.{block['id']}.blank: unknown column(s) {unknown}; the columns are {column_ids}"
            )
        members = []
        for values in _combinations(block["expand"]):
            row_id = block["id"] + "".join(f".{value}" for value in values.values())
            members.append(row_id)
            variables = derived({**values, **block.get("variables", {})}, role_names)
            runs = {ANY_SLOT: _runs(block["run"])}
            rows.append(Row(row_id, (*head, block["row_label"]), runs, variables, block["id"], blank=blank))
        for reduce in block.get("summaries", []):
            rows.append(
                Row(
                    f"{block['id']}.{reduce}",
                    (*head, SUMMARY_LABELS[reduce]),
                    {ANY_SLOT: _runs(block["run"])},
                    {},
                    block["id"],
                    summary=reduce,
                    members=tuple(members),
                    blank=blank,
                )
            )
    widths = {len(row.labels) for row in rows}
    if widths != {len(layout["labels"])}:
        raise ConfigError(f"tables.{table}: rows have {sorted(widths)} labels but the header names {len(layout['labels'])}")
    return rows


def cell_key(row: Row, column: Column) -> str:
    """The result-key template of a cell: the row's per-column override, else the row's key, else the column's."""
    return row.keys.get(column.id) or row.key or column.key


def row_name(row: Row) -> str:
    """The row as a footnote names it: its labels that need no metrics (`{params}`, ...), comma-separated."""
    parts = []
    for label in row.labels:
        names = {name for _, name, _, _ in string.Formatter().parse(label) if name}
        if label and names <= set(row.variables):
            parts.append(label.format(**row.variables))
    return ", ".join(parts) or row.id


def column_name(column: Column) -> str:
    return f"{column.group} {column.header}" if column.group else column.header


def row_runs(row: Row, column: Column) -> tuple[str, ...]:
    if row.paper_only or row.summary or column.summary:
        return ()
    if ANY_SLOT in row.runs:
        return row.runs[ANY_SLOT]
    if column.slot not in row.runs:
        raise ConfigError(f"row {row.id} has no run for the column slot '{column.slot}' (its slots: {sorted(row.runs)})")
    return row.runs[column.slot]


def table_runs(table: str, layout: Mapping[str, Any]) -> list[str]:
    """Every run whose metrics a table reads, in first-use order."""
    columns = columns_of(table, layout)
    runs: dict[str, None] = {}
    for row in rows_of(table, layout):
        for column in columns:
            for run in row_runs(row, column):
                runs[run] = None
    return list(runs)
