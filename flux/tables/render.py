"""`flux table`: the dispatcher to each kind of table, and the two kinds rendered here: the grid tables (cells of
metrics files, ours beside the paper's with a tolerance verdict) and supplementary Table 8 (dataset statistics).
What every table shares (escaping, templates, the scale note) is in flux.tables.latex, which the table modules
import, so that none of them imports this dispatcher back.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flux.errors import ConfigError
from flux.io import atomic_write_json, atomic_write_text, csv_text
from flux.provenance import latex_comment, provenance
from flux.tables.job_spec import CellsJob, CheckpointsJob, ClaimsJob, RecipeJob, SettingsJob, Table8Job, table_job
from flux.tables.latex import SCALE_NOTE, environment, latex_escape
from flux.tables.sources import load_paper_numbers

logger = logging.getLogger(__name__)

_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KM]?)\s*$")
COUNT_UNITS = {"": 1, "K": 1_000, "M": 1_000_000}
COUNT_NAMES = {"media": "images/videos", "texts": "texts"}
TABLE_TITLE = re.compile(r"^(main|supp)_table([0-9]+)$")


def format_count(count: float) -> str:
    """The paper's style: exact below a thousand, then K (no decimals) and M (two decimals)."""
    if count < 1_000:
        return f"{int(count)}"
    if count < 1_000_000:
        return f"{count / 1_000:.0f}K"
    return f"{count / 1_000_000:.2f}M"


def parse_count(text: str) -> float:
    match = _COUNT.match(str(text))
    if not match:
        raise ConfigError(f"paper number '{text}' is not a count like 658K, 2.88M or 0; fix config/paper_numbers.yaml")
    value, unit = float(match.group(1)), match.group(2)
    return value * COUNT_UNITS[unit]


def count_step(text: str) -> int:
    """The last printed digit of a count in units: 10,000 for a count printed with two decimals in M."""
    parse_count(text)  # the same errors for malformed text
    value, unit = _COUNT.match(str(text)).groups()
    decimals = len(value.partition(".")[2])
    return COUNT_UNITS[unit] // 10**decimals


def format_like(count: int, text: str) -> str:
    """`count` in the unit and number of decimals of the printed `text`."""
    value, unit = _COUNT.match(str(text)).groups()
    return f"{count / COUNT_UNITS[unit]:.{len(value.partition('.')[2])}f}{unit}"


def corpus_mismatches(rows: dict[str, dict[str, Any]], corpora: list[str], path: str) -> list[dict[str, Any]]:
    """Corpus rows (`members` in the paper numbers) whose printed count differs from the sum of their members'
    printed counts by more than half the total's last printed digit (the paper's 2.5M corpus prints fewer
    texts than its members have). Members are taken at their printed value, without their own rounding."""
    found = []
    for corpus in corpora:
        members = rows[corpus].get("members", [])
        unknown = [member for member in members if member not in rows]
        if unknown:
            raise ConfigError(f"{path}: supp_table8.rows.{corpus}.members: {unknown} are not rows of supp_table8")
        if not members:
            continue
        for field in ("media", "texts"):
            printed = rows[corpus][field]
            summed = sum(round(parse_count(rows[member][field])) for member in members)
            if 2 * abs(summed - round(parse_count(printed))) > count_step(printed):
                found.append(
                    {
                        "row": corpus,
                        "field": field,
                        "printed": printed,
                        "sum": format_like(summed, printed),
                        "members": {rows[member]["dataset"]: rows[member][field] for member in members},
                    }
                )
    return found


def table_title(table: str, start: bool = False) -> str:
    """main_table9 -> main Table 9, supp_table3 -> supplementary Table 3 (capitalised to start a sentence)."""
    kind, number = TABLE_TITLE.match(table).groups()
    title = f"{'main' if kind == 'main' else 'supplementary'} Table {number}"
    return title[0].upper() + title[1:] if start else title


def format_recomputed(value: float) -> str:
    """A number recomputed from printed ones (a mean of one-decimal entries), to two decimals at most."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def paper_check_sentences(checks: list[Any]) -> list[str]:
    """The footnote's account of the paper's own inconsistencies (cells.PaperMismatch)."""
    sentences = [
        f"The paper prints {format_number(check.printed)} for {check.row_name} / {check.column_name}; its own entries give "
        f"{format_recomputed(check.other)}."
        for check in checks
        if check.source == "summary"
    ]
    others = dict.fromkeys(check.source for check in checks if check.source != "summary")
    for other in others:
        cells = [check for check in checks if check.source == other]
        sentences.append(
            f"{table_title(other, start=True)} prints other numbers for {len(cells)} of these cells: "
            + "; ".join(
                f"{check.row_name} / {check.column_name}: {format_number(check.printed)} here, {format_number(check.other)} there"
                for check in cells
            )
            + "."
        )
    return sentences


def count_verdict(ours: float, paper: float, relative_tolerance: float, scale: str) -> str:
    """'ok' within tolerance, 'off' outside; 'n/a' below paper scale, where counts are not comparable."""
    if scale != "paper":
        return "n/a"
    if paper == 0:
        return "ok" if ours == 0 else "off"
    return "ok" if math.fabs(ours - paper) <= relative_tolerance * paper else "off"


def manifest_counts(manifest: Path, split: str = "train") -> dict[str, Any]:
    """#media and #texts of one split (pre-training uses the training split: Kinetics-710's 658K are its
    training videos), counting decodable media only: what a run can use."""
    from flux.data.index import read_manifest

    frame, info = read_manifest(manifest)
    frame = frame[frame["split"] == split]
    usable = frame[frame["decodable"]]
    return {
        "media": int(len(usable)),
        "undecodable": int(len(frame) - len(usable)),
        "texts": int(usable["captions"].map(len).sum()),
        "modality": info.modality,
    }


def supp_table8(job: Table8Job) -> tuple[str, dict[str, Any]]:
    paper = load_paper_numbers(Path(job.paper_numbers), "supp_table8")
    tolerance = float(paper["relative_tolerance"])
    scale = job.scale
    counts = {row.role: {**manifest_counts(Path(row.manifest)), "dataset_id": row.dataset} for row in job.rows}

    lines = []  # the CSV: the same rows, unescaped

    def render_row(key: str, media: int, texts: int, types: set[str], source: str) -> dict[str, Any]:
        reference = paper["rows"][key]
        paper_media, paper_texts = parse_count(reference["media"]), parse_count(reference["texts"])
        verdicts = {count_verdict(media, paper_media, tolerance, scale), count_verdict(texts, paper_texts, tolerance, scale)}
        check = "off" if "off" in verdicts else next(iter(verdicts))
        lines.append(
            {
                "key": key,
                "dataset": reference["dataset"],
                "source": source,
                "media": media,
                "paper_media": reference["media"],
                "texts": texts,
                "paper_texts": reference["texts"],
                "type": " + ".join(sorted(types)),
                "check": check,
            }
        )
        return {
            "key": key,
            "dataset": latex_escape(reference["dataset"]),
            "source": latex_escape(source),
            "media": format_count(media),
            "paper_media": latex_escape(reference["media"]),
            "texts": format_count(texts),
            "paper_texts": latex_escape(reference["texts"]),
            "type": " + ".join(sorted(types)),
            "check": check,
            "media_count": media,
            "text_count": texts,
        }

    rows = []
    for role, values in counts.items():
        rows.append(render_row(role, values["media"], values["texts"], {values["modality"]}, values["dataset_id"]))
    for role in job.missing_roles:
        logger.warning("supp_table8: role %s is not bound in this configuration; its row is left out", role)
    n_datasets = len(rows)
    for corpus, members in job.corpora.items():
        if corpus not in paper["rows"]:
            raise ConfigError(f"corpora.{corpus}: no paper numbers for it in {job.paper_numbers}")
        missing = [role for role in members if role not in counts]
        if missing:
            raise ConfigError(f"corpora.{corpus}: roles {missing} have no manifest among the Table 8 rows")
        datasets = {counts[role]["dataset_id"]: counts[role] for role in members}  # a dataset counts once
        rows.append(
            render_row(
                corpus,
                sum(values["media"] for values in datasets.values()),
                sum(values["texts"] for values in datasets.values()),
                {values["modality"] for values in datasets.values()},
                " + ".join(dict.fromkeys(members)),
            )
        )
    checks = corpus_mismatches(paper["rows"], list(job.corpora), job.paper_numbers)
    sentences = [
        f"The paper prints {check['printed']} {COUNT_NAMES[check['field']]} for the {paper['rows'][check['row']]['dataset']}; "
        f"its members' printed counts ({' + '.join(f'{name} {count}' for name, count in check['members'].items())}) "
        f"sum to {check['sum']}."
        for check in checks
    ]
    footnote = " ".join(latex_escape(text) for text in [*sentences, *paper.get("notes", [])])
    record = provenance(job.config_digest)
    caption = f"{paper['caption']}. {SCALE_NOTE[scale].capitalize()}."
    tex = (
        environment()
        .get_template("supp_table8.tex.j2")
        .render(
            provenance=latex_comment(record),
            scale=scale,
            caption=latex_escape(caption),
            rows=rows,
            n_datasets=n_datasets,
            footnote=footnote,
        )
    )
    data = {"table": "supp_table8", "scale": scale, "rows": rows, "paper_checks": checks, "provenance": record}
    data["files"] = {".csv": csv_text(lines)}
    return tex, data


def format_number(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "--"
    return f"{value:.1f}" + (f"$\\pm${std:.1f}" if std is not None else "")


def cell_latex(cell: Any, tolerance: float, scale: str) -> str:
    if cell.blank:
        return ""
    if cell.empty:
        return "$\\emptyset$"
    paper = cell.paper
    paper_text = "--" if paper is None else (f"{paper:.1f}" if isinstance(paper, (int, float)) else latex_escape(paper))
    if cell.ours is None:
        return "--" if paper is None else f"\\fluxpaper{{{paper_text}}}"
    if scale != "paper":  # a toy run's difference from a 64-GPU run means nothing: its interval instead
        interval = "" if cell.interval is None else "[{:.1f}, {:.1f}]".format(*cell.interval)
        return f"\\fluxtinycell{{{format_number(cell.ours, cell.std)}}}{{{interval}}}{{{paper_text}}}"
    delta = cell.delta
    mark = "\\textsuperscript{$\\dagger$}" if cell.verdict(tolerance, scale) == "off" else ""
    delta_text = "--" if delta is None else f"{delta:+.1f}"
    return f"\\fluxcell{{{format_number(cell.ours, cell.std)}}}{{{paper_text}}}{{{delta_text}}}{{{mark}}}"


def _merged_labels(rows: list[dict[str, Any]], width: int) -> list[list[str]]:
    """Label cells with runs of equal labels (same source, all but the last label column) as \\multirow."""
    out = [list(row["labels"]) for row in rows]
    for column in range(width - 1):
        start = 0
        while start < len(rows):
            end = start + 1
            while (
                end < len(rows)
                and rows[end]["source"] == rows[start]["source"]
                and rows[end]["labels"][: column + 1] == rows[start]["labels"][: column + 1]
            ):
                end += 1
            if end - start > 1:
                out[start][column] = f"\\multirow{{{end - start}}}{{*}}{{{rows[start]['labels'][column]}}}"
                for index in range(start + 1, end):
                    out[index][column] = ""
            start = end
    return out


def cells_table(job: CellsJob) -> tuple[str, dict[str, Any]]:
    from flux.tables.cells import build

    built = build(job)
    scale, tolerance, columns, rows = job.scale, built["tolerance"], built["columns"], built["rows"]
    labels = job.layout["labels"]
    width = len(labels)
    body, previous = [], None
    for row, label_cells in zip(rows, _merged_labels(rows, width)):
        if previous is not None and row["source"] != previous["source"] and not (row["paper_only"] and previous["paper_only"]):
            body.append("\\midrule")
        cells = [cell_latex(cell, tolerance, scale) for cell in row["cells"]]
        body.append(" & ".join(label_cells + cells) + " \\\\")
        previous = row
    group_row = group_rules = ""
    if any(column.group for column in columns):
        spans: list[list] = []
        for column in columns:
            if spans and spans[-1][0] == column.group:
                spans[-1][1] += 1
            else:
                spans.append([column.group, 1])
        parts, rules, position = [""] * width, [], width + 1
        for group, count in spans:
            parts.append(f"\\multicolumn{{{count}}}{{c}}{{{group or ''}}}")
            if group:
                rules.append(f"\\cmidrule(lr){{{position}-{position + count - 1}}}")
            position += count
        group_row, group_rules = " & ".join(parts), "".join(rules)
    header_row = " & ".join(list(labels) + [column.header for column in columns])
    cells_note = (
        f"Cells: ours (paper; ours $-$ paper); $\\dagger$: off by more than {tolerance:g}"
        if scale == "paper"
        else "Cells: ours [95\\% bootstrap interval over the test videos, where the metrics keep per-video outcomes] "
        "(paper); below paper scale ours is not compared with the paper's number: the claims table "
        "(results/tables/claims.tex) says what the measurements show"
    )
    notes = [cells_note, "grey: the paper's number for another method"]
    if built["skipped"]:
        notes.append("rows not trained in this configuration: " + latex_escape(", ".join(built["skipped"])))
    sentences = paper_check_sentences(built["paper_checks"])
    sentences += [f"{', '.join(names)}: {note}." for note, names in built["row_notes"].items()]
    sentences += [latex_escape(note) for note in built["notes"]]
    record = provenance(job.config_digest)
    caption = f"{built['caption']}. {SCALE_NOTE[scale].capitalize()}."
    tex = (
        environment()
        .get_template("cells.tex.j2")
        .render(
            provenance=latex_comment(record),
            table=job.table,
            caption_comment=built["caption"],
            scale=scale,
            caption=latex_escape(caption),
            wide=len(columns) + width > 7,
            column_spec="l" * width + "c" * len(columns),
            group_row=group_row,
            group_rules=group_rules,
            header_row=header_row,
            body=body,
            footnote=" ".join(["; ".join(notes) + ".", *sentences]),
        )
    )
    data_rows = [
        {
            "id": row["id"],
            "labels": row["labels"],
            "cells": [
                {
                    "column": column.id,
                    "ours": cell.ours,
                    "std": cell.std,
                    "paper": cell.paper,
                    "delta": cell.delta,
                    "interval": list(cell.interval) if cell.interval else None,
                    "verdict": "blank" if cell.blank else "empty" if cell.empty else cell.verdict(tolerance, scale),
                    "text": format_number(cell.ours, cell.std) if cell.ours is not None else None,
                    "sources": list(cell.sources),
                }
                for column, cell in zip(columns, row["cells"])
            ],
        }
        for row in rows
    ]
    data = {
        "table": job.table,
        "scale": scale,
        "skipped": built["skipped"],
        "rows": data_rows,
        "paper_checks": [asdict(check) for check in built["paper_checks"]],
        "provenance": record,
        "files": {".csv": csv_text(cell_lines(data_rows), CELL_FIELDS)},
    }
    return tex, data


CELL_FIELDS = ["row", "labels", "column", "ours", "std", "interval_low", "interval_high", "paper", "delta", "verdict", "sources"]


def cell_lines(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A grid table as CSV lines, one per cell (the JSON's rows, flattened)."""
    lines = []
    for row in rows:
        for cell in row["cells"]:
            low, high = cell["interval"] or (None, None)
            lines.append(
                {
                    "row": row["id"],
                    "labels": " / ".join(row["labels"]),
                    **{field: cell[field] for field in ("column", "ours", "std", "paper", "delta", "verdict")},
                    "interval_low": low,
                    "interval_high": high,
                    "sources": "; ".join(cell["sources"]),
                }
            )
    return lines


def settings_table(job: SettingsJob) -> tuple[str, dict[str, Any]]:
    from flux.tables.settings import render_settings

    return render_settings(job)


def recipe_table(job: RecipeJob) -> tuple[str, dict[str, Any]]:
    from flux.tables.recipe import render

    return render(job)


def checkpoints_table(job: CheckpointsJob) -> tuple[str, dict[str, Any]]:
    from flux.tables.checkpoints import render

    return render(job)


def claims_table(job: ClaimsJob) -> tuple[str, dict[str, Any]]:
    from flux.tables.claims import render

    return render(job)


RENDERERS = {
    Table8Job: supp_table8,
    CellsJob: cells_table,
    SettingsJob: settings_table,
    RecipeJob: recipe_table,
    CheckpointsJob: checkpoints_table,
    ClaimsJob: claims_table,
}


def run(job: dict[str, Any]) -> None:
    """`flux table`: render one table to <out>.tex, with its numbers in <out>.json beside it (and the files a
    renderer adds under `files`, by suffix: the recipe and checkpoints tables' CSV)."""
    spec = table_job(job)
    tex, data = RENDERERS[type(spec)](spec)
    out = Path(spec.out)
    for suffix, text in data.pop("files", {}).items():
        atomic_write_text(out.with_suffix(suffix), text)
    atomic_write_json(out.with_suffix(".json"), data)
    atomic_write_text(out, tex)
    logger.info("wrote %s (%d rows)", out, len(data["rows"]))
