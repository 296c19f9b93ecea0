"""config/tables.yaml and config/paper_numbers.yaml: read, schema-checked, and cross-checked against the runs and roles
of a configuration (flux.config builds a Config with the table document; the renderers read the paper's numbers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flux.errors import ConfigError
from flux.yamlfiles import read_yaml_mapping, schema_path, validate_schema

# Table 8 of the supplement lists these pre-training sources, in this order.
TABLE8_ROLES = ("k710", "coco", "vg", "sbu", "cc3m", "cc12m", "smit", "webvid2m", "webvid10m", "internvid2m")


def load_paper_numbers(path: Path, table: str) -> dict[str, Any]:
    """One table's entry of config/paper_numbers.yaml, schema-checked."""
    document = read_yaml_mapping(Path(path), "paper numbers file")
    validate_schema(document, schema_path("paper_numbers.schema.yaml"))
    if table not in document:
        raise ConfigError(f"{path}: no entry for {table}; transcribe its paper numbers there")
    return document[table]


SETTINGS_TABLES = ("supp_table5", "supp_table6", "supp_table7")  # rendered from config/runs.yaml


def load_table_document(path: Path, wanted: Sequence[str], runs: Mapping[str, Any], roles: Mapping[str, str]) -> dict:
    """config/tables.yaml, schema-checked, with every protocol, run and role it names checked to exist."""
    document = read_yaml_mapping(path, "tables file")
    validate_schema(document, schema_path("tables.schema.yaml"))
    protocols, tables = document["protocols"], document["tables"]
    for table in wanted:
        if table not in tables and table not in (*SETTINGS_TABLES, "supp_table8"):
            known = ", ".join(sorted([*tables, *SETTINGS_TABLES, "supp_table8"]))
            raise ConfigError(f"tables: '{table}' is not defined in {path} (known: {known})")
    for name, protocol in protocols.items():
        unbound = [role for role in protocol.get("roles", []) if role not in roles]
        if unbound:
            raise ConfigError(f"{path}: protocols.{name}.roles: {unbound} are not bound under `roles` in the configuration")
        if protocol.get("token_optimization") and "budgets" not in protocol["token_optimization"]:
            raise ConfigError(f"{path}: protocols.{name}.token_optimization needs `budgets`")
    for table, layout in tables.items():
        where = f"{path}: tables.{table}"
        if layout["protocol"] not in protocols:
            raise ConfigError(f"{where}.protocol: unknown protocol '{layout['protocol']}' (known: {', '.join(protocols)})")
        if ("rows" in layout) == ("blocks" in layout):
            raise ConfigError(f"{where}: give either `rows` or `blocks`")
        named = [run for row in layout.get("rows", []) for value in row.get("runs", {}).values() for run in _as_list(value)]
        named += [run for block in layout.get("blocks", []) for run in _as_list(block["run"])]
        unknown = sorted({run for run in named if run not in runs})
        if unknown:
            raise ConfigError(f"{where}: unknown run(s) {unknown}; the runs are in the runs file")
    for index, claim in enumerate(document.get("claims", [])):
        where = f"{path}: claims[{index}] ({claim['id']})"
        sides = claim_sides(claim)
        if ("protocol" in claim) == ("log" in claim):
            raise ConfigError(f"{where}: give either `protocol` (an evaluation) or `log` (a training-log metric)")
        if "log" in claim and (claim["against"] == "chance" or any("keys" in side for side in sides)):
            raise ConfigError(f"{where}: a `log` claim compares two runs' logs: `better` and `against` name a run only")
        if "protocol" in claim and any("keys" not in side for side in sides):
            raise ConfigError(f"{where}: each side of a protocol claim needs `keys` (the results averaged per item)")
        if "protocol" in claim and claim["protocol"] not in protocols:
            raise ConfigError(f"{where}.protocol: unknown protocol '{claim['protocol']}' (known: {', '.join(protocols)})")
        unknown = sorted({run for side in sides for run in [side["run"], *side.get("replicas", [])] if run not in runs})
        if unknown:
            raise ConfigError(f"{where}: unknown run(s) {unknown}; the runs are in the runs file")
        if "log" in claim and any("replicas" in side for side in sides):
            raise ConfigError(f"{where}: `replicas` are read from evaluations; a `log` claim reads one run per side")
        if claim.get("paper") and claim["paper"]["table"] not in tables:
            raise ConfigError(f"{where}.paper.table: '{claim['paper']['table']}' is not a table of {path}")
    for name, figure in document.get("figures", {}).items():
        _check_figure(f"{path}: figures.{name}", figure, protocols, runs)
    return document


def claim_sides(claim: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A claim entry's sides: `better`, then `against` unless the claim is against chance."""
    return [claim["better"]] + ([claim["against"]] if claim["against"] != "chance" else [])


PANEL_KEY = {"accuracy_vs_gflops": "budgets", "accuracy_vs_frames": "budget"}  # the key that tells the panel shapes apart


def _check_figure(where: str, figure: Mapping[str, Any], protocols: Mapping[str, Any], runs: Mapping[str, Any]) -> None:
    kind = figure["kind"]
    if kind in PANEL_KEY:
        if "panels" not in figure or "runs" in figure:
            raise ConfigError(f"{where}: a {kind} figure takes `panels` (each with its runs), not `runs`")
        named = []
        for index, panel in enumerate(figure["panels"]):
            if PANEL_KEY[kind] not in panel:
                raise ConfigError(f"{where}.panels[{index}]: a {kind} panel needs `{PANEL_KEY[kind]}`")
            if panel["protocol"] not in protocols:
                known = ", ".join(protocols)
                raise ConfigError(f"{where}.panels[{index}].protocol: unknown protocol '{panel['protocol']}' (known: {known})")
            stray = sorted(set(panel.get("bands", {})) - set(panel["runs"]))
            if stray:
                raise ConfigError(f"{where}.panels[{index}].bands: {stray} are not legend labels of its `runs`")
            named += [*panel["runs"].values(), *panel.get("baselines", {}).values()]
    else:
        if "runs" not in figure or "panels" in figure:
            raise ConfigError(f"{where}: a {kind} figure takes `runs` (legend label -> run), not `panels`")
        named = list(figure["runs"].values())
    unknown = sorted({run for run in named if run not in runs})
    if unknown:
        raise ConfigError(f"{where}: unknown run(s) {unknown}; the runs are in the runs file")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list) else [value]
