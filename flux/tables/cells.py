"""Grid tables (main Tables 1-9, supplementary Tables 1-4): every value cell read from a metrics file.

A cell is `ours` (from the metrics file of its run and protocol; several runs: mean and std), the paper's
number (config/paper_numbers.yaml, one list per row aligned to the columns), their delta, and a verdict:
`ok` within the table's tolerance, `off` outside, `n/a` below paper scale (tiny numbers are not comparable)
or where one side is missing. `∅` marks a cell whose input has fewer tokens than its budget (the protocol
does not evaluate it, as the paper does not). Summary rows and columns (Avg, Max) reduce our cells.

The paper's numbers are checked against themselves, so that its own inconsistencies are footnoted instead of
reading as ours: each printed Avg / Max against the same reduction of its printed entries, and cells that
another table prints too (`cross_check` in config/paper_numbers.yaml) against that table.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flux.errors import ConfigError, FluxError
from flux.stats import hits, proportion_interval
from flux.tables.job_spec import CellsJob
from flux.tables.layout import Column, Row, cell_key, column_name, columns_of, fill, row_name, row_runs, rows_of
from flux.tables.sources import load_paper_numbers

logger = logging.getLogger(__name__)

EMPTY = "∅"
PRINTED_DECIMALS = 1  # the paper prints scores with one decimal
ROUNDING = 10**-PRINTED_DECIMALS / 2  # a recomputed summary this close to the printed one differs by rounding only


@dataclass
class Cell:
    ours: float | None = None
    std: float | None = None
    paper: float | str | None = None
    empty: bool = False  # the paper's ∅: not evaluated at this input
    blank: bool = False  # left blank, as the paper does where a row has no such column (not ∅)
    sources: tuple[str, ...] = ()  # "metrics file :: role/key/metric" for each value averaged
    interval: tuple[float, float] | None = None  # 95% interval over the test items (one run's cells; flux.stats)

    @property
    def delta(self) -> float | None:
        if self.ours is None or not isinstance(self.paper, (int, float)):
            return None
        return self.ours - self.paper

    def verdict(self, tolerance: float, scale: str) -> str:
        if scale != "paper" or self.delta is None:
            return "n/a"
        return "ok" if abs(self.delta) <= tolerance + 1e-9 else "off"


def dig(result: Mapping[str, Any], metric: str, where: str) -> float:
    value: Any = result
    for part in metric.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise FluxError(f"{where}: the result has no metric '{metric}' (missing '{part}')")
        value = value[part]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise FluxError(f"{where}: metric '{metric}' is {value!r}, not a number")
    return float(value)


def item_outcomes(result: Mapping[str, Any], metric: str) -> np.ndarray | None:
    """Per-item outcomes (1 = counted) behind a metric in %, where the metrics file keeps them: top-1 per video
    (also nested: `plain.top1`), multiple-choice accuracy per question, retrieval R@K per caption query (T2V); None
    for the others (top-5, V2T, means of ranks, caption F1)."""
    parts = metric.split(".")
    if metric == "accuracy":
        return hits(result["accuracy_hits"]) if "accuracy_hits" in result else None
    if parts[-1] == "top1":  # `top1`, or a nested one such as a held-out TO result's `plain.top1`
        for part in parts[:-1]:
            result = result.get(part, {}) if isinstance(result, Mapping) else {}
        return hits(result["top1_hits"]) if isinstance(result, Mapping) and "top1_hits" in result else None
    if len(parts) == 3 and parts[1] == "t2v" and parts[2].startswith("R@"):
        ranks = result.get(parts[0], {}).get("t2v_ranks")
        if ranks is not None:
            return (np.asarray(ranks) < int(parts[2][2:])).astype(np.float64)
    return None


class MetricsStore:
    """The metrics files of a table, read once; `results[run]` is the `results` block of run's file."""

    def __init__(self, paths: Mapping[str, str], keys: Mapping[str, list[str]]):
        self.paths = dict(paths)
        self.keys = {run: set(values) for run, values in keys.items()}
        self.records: dict[str, dict[str, Any]] = {}

    def record(self, run: str) -> dict[str, Any]:
        if run not in self.records:
            path = Path(self.paths[run])
            if not path.is_file():
                raise FluxError(f"metrics file {path} is missing; run its evaluation (snakemake {path})")
            self.records[run] = json.loads(path.read_text(encoding="utf-8"))
        return self.records[run]

    def result(self, run: str, role: str | None, key: str, where: str) -> tuple[dict[str, Any], str]:
        record = self.record(run)
        results = record["results"]
        if role is None:
            if len(results) != 1:
                raise ConfigError(
                    f"{where}: {self.paths[run]} holds several datasets {sorted(results)}; name the column's `role`"
                )
            role = next(iter(results))
        if role not in results:
            raise FluxError(
                f"{where}: {self.paths[run]} has no results for '{role}' (has {sorted(results)}); re-run the evaluation"
            )
        if key not in results[role]:
            raise FluxError(f"{where}: {self.paths[run]} lacks result '{key}' for {role}; re-run the evaluation (snakemake -R)")
        return results[role][key], f"{self.paths[run]} :: {role}/{key}"


def cell_variables(row: Row, column: Column) -> dict[str, Any]:
    return {**column.variables, **row.variables}


def fill_cell(store: MetricsStore, table: str, row: Row, column: Column) -> Cell:
    runs = row_runs(row, column)
    variables = cell_variables(row, column)
    where = f"{table} row {row.id} column {column.id}"
    key = fill(cell_key(row, column), variables, where)
    metric = fill(column.metric, variables, where)
    if any(key not in store.keys[run] for run in runs):
        return Cell(empty=True)
    values, sources, outcomes = [], [], None
    for run in runs:
        result, source = store.result(run, column.role, key, where)
        values.append(dig(result, metric, f"{where} ({source})"))
        sources.append(f"{source}/{metric}")
        outcomes = item_outcomes(result, metric)
    std = statistics.stdev(values) if len(values) > 1 else None
    interval = None
    if len(runs) == 1 and outcomes is not None and len(outcomes):
        found = proportion_interval(outcomes).scaled(100)
        interval = (round(found.low, 4), round(found.high, 4))
    return Cell(ours=statistics.fmean(values), std=std, sources=tuple(sources), interval=interval)


def reduce(values: list[float], how: str) -> float | None:
    if not values:
        return None
    return statistics.fmean(values) if how == "mean" else max(values)


@dataclass(frozen=True)
class PaperMismatch:
    """A number the paper prints in this table that its own other numbers contradict."""

    row: str
    column: str
    row_name: str
    column_name: str
    printed: float
    other: float  # the reduction of the paper's own entries, or the number the other table prints
    source: str  # "summary", or the id of the table that prints `other`


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary_mismatches(rows: list[Row], columns: list[Column], values: Mapping[str, list]) -> list[PaperMismatch]:
    """Printed Avg / Max cells that differ by more than rounding from the same reduction of the paper's printed
    entries (main Table 1 prints a Max above the largest entry of its column)."""
    found = []
    for row in rows:
        for index, column in enumerate(columns):
            printed = values[row.id][index]
            if not _is_number(printed) or bool(row.summary) == bool(column.summary):
                continue  # a data cell, or the corner of a summary row and a summary column
            if row.summary:
                how, entries = row.summary, [values[member][index] for member in row.members]
            else:
                how = column.summary
                entries = [value for value, other in zip(values[row.id], columns) if not other.summary]
            recomputed = reduce([entry for entry in entries if _is_number(entry)], how)
            if recomputed is not None and abs(recomputed - printed) > ROUNDING + 1e-9:
                found.append(PaperMismatch(row.id, column.id, row_name(row), column_name(column), printed, recomputed, "summary"))
    return found


def cross_check_cells(path: Path, table: str, paper: Mapping[str, Any]) -> tuple[str, list[tuple[str, int, str, int]]] | None:
    """The other table of `cross_check` and the cells both print, as (row, column position) here and there.

    One entry declares the correspondence (`rows`, and `columns`: for each of its columns the position of the
    counterpart in the other table's lists); the other table's entry names it back and reads it backwards."""
    spec = paper.get("cross_check")
    if spec is None:
        return None
    other = spec["table"]
    forward = "rows" in spec
    declaring, entry = (table, paper) if forward else (other, load_paper_numbers(path, other))
    declared, declaring_values = entry.get("cross_check", {}), entry.get("values", {})
    if not forward and (declared.get("table") != table or "rows" not in declared):
        raise ConfigError(
            f"{path}: {table}.cross_check names {other} without `rows` and `columns`, so {other}.cross_check must "
            f"declare them with `table: {table}`; declare the correspondence on one side"
        )
    cells = []
    for mine, theirs in declared["rows"].items():
        if mine in declaring_values and len(declared["columns"]) != len(declaring_values[mine]):
            raise ConfigError(
                f"{path}: {declaring}.cross_check.columns has {len(declared['columns'])} entries, but {declaring}.values.{mine} "
                f"has {len(declaring_values[mine])} columns; give one position (or null) per column"
            )
        for index, position in enumerate(declared["columns"]):
            if position is not None:
                cells.append((mine, index, theirs, position) if forward else (theirs, position, mine, index))
    return other, cells


def cross_check_mismatches(
    path: Path, table: str, paper: Mapping[str, Any], rows: list[Row], columns: list[Column]
) -> list[PaperMismatch]:
    """Cells of `rows` that the `cross_check` table prints with another number."""
    resolved = cross_check_cells(path, table, paper)
    if resolved is None:
        return []
    other, cells = resolved
    values, other_values = paper.get("values", {}), load_paper_numbers(path, other).get("values", {})
    shown = {row.id: row for row in rows}
    found = []
    for mine, index, theirs, position in cells:
        for row_id, column, numbers, name in ((mine, index, values, table), (theirs, position, other_values, other)):
            if row_id not in numbers or column >= len(numbers[row_id]):
                raise ConfigError(
                    f"{path}: the cross_check of {table} and {other} names {name} row '{row_id}' column position {column}, "
                    f"which {name}.values does not have; fix `rows` / `columns` of the declaring cross_check"
                )
        printed, elsewhere = values[mine][index], other_values[theirs][position]
        if mine in shown and printed is not None and elsewhere is not None and printed != elsewhere:
            row = shown[mine]
            found.append(
                PaperMismatch(mine, columns[index].id, row_name(row), column_name(columns[index]), printed, elsewhere, other)
            )
    return found


def label_variables(store: MetricsStore, row: Row, columns: list[Column], facts: dict[str, dict]) -> dict[str, Any]:
    """Names only the metrics know: the model's parameters (M), GFLOPs per view and views of the row's setting;
    and the run's facts from the configuration (`pretraining_data`)."""
    variables = dict(row.variables)
    runs = next((row_runs(row, column) for column in columns if row_runs(row, column)), ())
    if runs:
        variables.update(facts.get(runs[0], {}))
        record = store.record(runs[0])
        variables["params"] = f"{record['params_m']:.3g}"
        variables["views"] = record["views"][0] * record["views"][1]
        setting = row.variables.get("setting")
        results = next(iter(record["results"].values()))
        if setting in results and "gflops" in results[setting]:
            variables["gflops"] = f"{results[setting]['gflops']:.3g}"
    return variables


def build(job: CellsJob) -> dict[str, Any]:
    """The table as data: header, rows of label strings and cells, footnotes."""
    table, layout = job.table, job.layout
    paper = load_paper_numbers(Path(job.paper_numbers), table)
    if "tolerance" not in paper:
        raise ConfigError(f"{job.paper_numbers}: {table} needs `tolerance` (allowed |ours - paper| in points)")
    tolerance = float(paper["tolerance"])
    columns = columns_of(table, layout)
    all_rows = rows_of(table, layout)
    untrained = set(job.untrained)
    skipped = [row.id for row in all_rows if any(run in untrained for runs in row.runs.values() for run in runs)]
    rows = [row for row in all_rows if row.id not in skipped]
    store = MetricsStore(job.metrics, job.keys)
    values = paper.get("values", {})
    unknown = sorted(set(values) - {row.id for row in all_rows})
    if unknown:
        raise ConfigError(f"{job.paper_numbers}: {table}.values has rows {unknown} that the table does not have")
    grid: dict[str, list[Cell]] = {}
    for row in rows:
        reference = values.get(row.id)
        if reference is None:
            raise ConfigError(
                f"{job.paper_numbers}: {table}.values lacks row '{row.id}' (a list of {len(columns)} numbers or null)"
            )
        if len(reference) != len(columns):
            raise ConfigError(
                f"{job.paper_numbers}: {table}.values.{row.id} has {len(reference)} entries for {len(columns)} columns "
                f"({', '.join(column.id for column in columns)})"
            )
        cells = []
        for column, number in zip(columns, reference):
            if column.id in row.blank:
                if number is not None:
                    raise ConfigError(f"{table} row {row.id} column {column.id}: the paper has {number} in a `blank` column")
                cells.append(Cell(blank=True))
            elif row.paper_only or row.summary or column.summary:
                cells.append(Cell(paper=number))
            else:
                cell = fill_cell(store, table, row, column)
                cell.paper = number
                if cell.empty and number is not None:
                    raise ConfigError(
                        f"{table} row {row.id} column {column.id}: the paper has {number} but protocol "
                        f"'{layout['protocol']}' does not evaluate this cell; fix the key or the protocol"
                    )
                cells.append(cell)
        grid[row.id] = cells
    for row in rows:  # block summaries (Avg / Max rows), then row summaries (Avg / Max columns)
        if row.summary:
            members = [grid[member] for member in row.members if member in grid]
            for index, column in enumerate(columns):
                if column.summary or grid[row.id][index].blank:
                    continue
                ours = [cells[index].ours for cells in members if cells[index].ours is not None]
                grid[row.id][index].ours = reduce(ours, row.summary)
    for row in rows:
        for index, column in enumerate(columns):
            if column.summary and not row.paper_only and not row.summary:
                ours = [cell.ours for cell, other in zip(grid[row.id], columns) if not other.summary and cell.ours is not None]
                grid[row.id][index].ours = reduce(ours, column.summary)
    checks = summary_mismatches(rows, columns, values) + cross_check_mismatches(
        Path(job.paper_numbers), table, paper, rows, columns
    )
    row_notes: dict[str, list[str]] = {}
    for row in rows:
        if row.note:
            names = row_notes.setdefault(row.note, [])
            if row_name(row) not in names:
                names.append(row_name(row))
    rendered_rows = []
    for row in rows:
        variables = label_variables(store, row, columns, job.run_facts) if not row.paper_only else dict(row.variables)
        labels = [fill(label, variables, f"{table} row {row.id}") for label in row.labels]
        rendered_rows.append(
            {"id": row.id, "source": row.source, "labels": labels, "paper_only": row.paper_only, "cells": grid[row.id]}
        )
    if skipped:
        logger.warning("%s: rows %s left out: their runs are not trained in this configuration", table, skipped)
    return {
        "columns": columns,
        "rows": rendered_rows,
        "skipped": skipped,
        "tolerance": tolerance,
        "caption": paper.get("caption", layout["caption"]),
        "paper_checks": checks,
        "row_notes": row_notes,  # note -> the rows it explains
        "notes": list(paper.get("notes", [])),
    }
