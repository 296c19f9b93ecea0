"""The claims table: each of the paper's qualitative claims tested on this build's own measurements.

A claim compares two sides measured on the same test items: `better` and `against` (a run's per-item outcomes
under a protocol: each video's top-1 hit, each caption's T2V hit at R@K, averaged per item over the side's result
keys), or `better` and chance (R@K of a retrieval gallery of N videos: K / N). Our effect is the difference in
points with its 95% interval over the same items (flux.stats: Newcombe's paired score interval for 0/1 outcomes, the
paired bootstrap for averaged ones; Wilson's interval against chance), and the verdict follows from the interval
alone: reproduced (the claimed direction, zero excluded), contradicted (the other direction, zero excluded) or
inconclusive. The paper's evidence is the mean of the named cells of config/paper_numbers.yaml on each side.
A claim may instead read a metric of two runs' training logs (`log`: the overall gradient norm of supplementary
Figure 4): its effect is how much lower the better run's is, in % of the other's, paired by step, with a
moving-block bootstrap interval (neighbouring steps are not independent).
A side may carry seed replicas of its run (`replicas`, where the configuration repeats the claims' runs over seeds:
`evaluation.claim_replicas`): its outcomes are then read per seed, and the interval is flux.stats' two-level
bootstrap over the items and each side's seeds.
A claim whose runs this configuration does not train is listed as not measured.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np

from flux.errors import ConfigError, FluxError
from flux.io import csv_text
from flux.provenance import latex_comment, provenance
from flux.stats import (
    VERDICTS,
    Interval,
    difference_interval,
    proportion_interval,
    relative_reduction,
    replicated_difference,
    verdict,
)
from flux.tables.cells import MetricsStore, dig, item_outcomes
from flux.tables.figures import read_log
from flux.tables.job_spec import Claim, ClaimSide, ClaimsJob
from flux.tables.latex import SCALE_NOTE, environment, latex_escape
from flux.tables.sources import load_paper_numbers

NOT_MEASURED = "not measured"
FIELDS = ["id", "claim", "paper_table", "paper_effect", "ours_effect", "low", "high", "items", "seeds", "verdict", "note"]


def side_outcomes(store: MetricsStore, side: ClaimSide, role: str | None, where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-item outcomes of one side, averaged over its keys, one row per seed (the run, then its replicas), and the
    first key's result (for its sizes)."""
    rows = [_seed_outcomes(store, side, path, role, where) for path in side.measured]
    if len({len(outcomes) for outcomes, _ in rows}) != 1:
        raise FluxError(f"{where}: the seed replicas {side.measured} score different numbers of items")
    return np.stack([outcomes for outcomes, _ in rows]), rows[0][1]


def _seed_outcomes(store: MetricsStore, side: ClaimSide, path: str, role: str | None, where: str) -> tuple[np.ndarray, dict]:
    columns, results = [], []
    for key in side.keys:
        result, source = store.result(path, role, key, where)
        outcomes = item_outcomes(result, side.metric)
        if outcomes is None:
            raise FluxError(
                f"{where}: {source} keeps no per-item outcomes for {side.metric} (top1, or a T2V R@K); "
                "re-run the evaluation (snakemake -R evaluate)"
            )
        columns.append(outcomes)
        results.append(result)
    if len({len(column) for column in columns}) != 1:
        raise FluxError(f"{where}: the keys {side.keys} of {path} score different numbers of items")
    return np.mean(columns, axis=0), results[0]


def chance_level(result: dict[str, Any], metric: str, where: str) -> float:
    """R@K of a gallery of N videos by chance: K / N."""
    parts = metric.split(".")
    if len(parts) != 3 or not parts[2].startswith("R@") or "videos" not in result:
        raise ConfigError(f"{where}: `against: chance` compares a retrieval R@K (e.g. dual_softmax.t2v.R@1), not {metric}")
    return min(1.0, int(parts[2][2:]) / result["videos"])


def paper_effect(paper: dict[str, Any], claim: Claim, where: str) -> float | None:
    """Mean of the claim's paper cells on the better side minus the mean on the against side (or the better mean alone
    for a claim against chance); None where the paper prints no such cells."""
    if not claim.paper_table:
        return None

    def mean(cells: list[list[Any]]) -> float:
        values = []
        for row, position in cells:
            printed = paper.get("values", {}).get(row)
            if printed is None or position >= len(printed) or not isinstance(printed[position], (int, float)):
                raise ConfigError(f"{where}: config/paper_numbers.yaml {claim.paper_table}.values.{row}[{position}] is no number")
            values.append(float(printed[position]))
        return statistics.fmean(values)

    better = mean(claim.paper_better)
    return better - mean(claim.paper_against) if claim.paper_against else better


def measure(claim: Claim, paper: dict[str, Any]) -> dict[str, Any]:
    """One claim's row; `paper`: its paper table's entry of config/paper_numbers.yaml (empty without one)."""
    where = f"claims.{claim.id}"
    row: dict[str, Any] = {"id": claim.id, "claim": claim.claim, "note": claim.note, "paper_table": claim.paper_table}
    row["paper_effect"] = paper_effect(paper, claim, where)
    untrained = [side.run for side in claim.sides if side.metrics is None]
    if untrained:
        return {**row, "ours_effect": None, "low": None, "high": None, "items": None, "seeds": None, "verdict": NOT_MEASURED,
                "reason": f"not trained in this configuration: {', '.join(untrained)}"}  # fmt: skip
    effect = _log_effect(claim, where) if claim.log else _evaluation_effect(claim, where)
    points = effect.scaled(100)
    return {
        **row,
        "ours_effect": round(points.estimate, 4),
        "low": round(points.low, 4),
        "high": round(points.high, 4),
        "items": points.items,
        "seeds": "/".join(str(len(side.measured)) for side in claim.sides),
        "verdict": verdict(effect),
        "reason": "",
    }


def _evaluation_effect(claim: Claim, where: str) -> Interval:
    """Better minus against (or minus chance) over the same test items, as fractions."""
    store = MetricsStore({path: path for side in claim.sides for path in side.measured}, {})  # by file: each read once
    better, result = side_outcomes(store, claim.sides[0], claim.role, f"{where}.better")
    against = None
    if len(claim.sides) == 2:
        against, _ = side_outcomes(store, claim.sides[1], claim.role, f"{where}.against")
        if against.shape[1] != better.shape[1]:
            raise FluxError(
                f"{where}: the two sides score {better.shape[1]} and {against.shape[1]} items; they must share a test set"
            )
    chance = None if against is not None else chance_level(result, claim.sides[0].metric, where)
    if len(better) > 1 or (against is not None and len(against) > 1):  # seed replicas
        return replicated_difference(better, against, offset=chance or 0.0)
    if against is not None:
        return difference_interval(better[0], against[0])
    found = proportion_interval(better[0])
    return Interval(found.estimate - chance, found.low - chance, found.high - chance, found.items)


def _series(path: str, metric: str, where: str) -> dict[int, float]:
    return {int(record["step"]): dig(record, metric, f"{where}: {path} step {record['step']}") for record in read_log(path)}


def _log_effect(claim: Claim, where: str) -> Interval:
    """A training-log claim: how much lower the better run's metric is than the other's, as a fraction of the
    other's, over the steps both logged (paired by step; a moving-block bootstrap interval)."""
    better, against = (_series(side.metrics, claim.log, where) for side in claim.sides)
    steps = sorted(set(better) & set(against))
    if not steps:
        raise FluxError(f"{where}: the two runs' logs share no step; log both at the same steps (training.log_every)")
    return relative_reduction([against[step] for step in steps], [better[step] for step in steps])


def _signed(value: float | None) -> str:
    return "--" if value is None else f"{value:+.1f}"


def render(job: ClaimsJob) -> tuple[str, dict[str, Any]]:
    tables = {claim.paper_table for claim in job.claims if claim.paper_table}
    paper = {table: load_paper_numbers(Path(job.paper_numbers), table) for table in tables}
    rows = [measure(claim, paper.get(claim.paper_table, {})) for claim in job.claims]
    body = []
    for row in rows:
        paper = "--" if row["paper_effect"] is None else f"{_signed(row['paper_effect'])} ({latex_escape(row['paper_table'])})"
        if row["verdict"] == NOT_MEASURED:
            ours = latex_escape(row["reason"])
        else:
            ours = f"{_signed(row['ours_effect'])} [{_signed(row['low'])}, {_signed(row['high'])}], n={row['items']}"
            if row["seeds"] not in ("1/1", "1"):
                ours += f", seeds {row['seeds']}"
        claim = latex_escape(row["claim"]) + (f" \\emph{{({latex_escape(row['note'])})}}" if row["note"] else "")
        body.append(f"{claim} & {paper} & {ours} & {row['verdict']} \\\\")
    record = provenance(job.config_digest)
    counts = {name: sum(row["verdict"] == name for row in rows) for name in (*VERDICTS, NOT_MEASURED)}
    caption = (
        "The paper's claims tested on this build: our effect (points, better minus against, or minus chance) with its "
        "95\\% interval over the same test items (paired; and over each side's seeds where a run was repeated with "
        "other seeds), and the verdict it implies; the paper's effect from "
        f"the named table's cells. {latex_escape(SCALE_NOTE[job.scale].capitalize())}."
    )
    tex = (
        environment()
        .get_template("claims.tex.j2")
        .render(provenance=latex_comment(record), caption=caption, body=body, counts=counts)
    )
    data = {
        "table": "claims",
        "scale": job.scale,
        "rows": rows,
        "verdicts": counts,
        "provenance": record,
        "files": {".csv": csv_text([{field: row.get(field) for field in FIELDS} for row in rows], FIELDS)},
    }
    return tex, data
