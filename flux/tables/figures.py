"""The paper's figures as PNG (matplotlib, Agg), drawn from training logs and metrics files only.

- grad_norms (supplementary Figure 2): L2 gradient norm per module group over training steps;
- convergence (supplementary Figure 3): training loss per step, one curve per run (frame count), with the
  run's validation top-1 in the legend;
- total_grad_norm (supplementary Figure 4): the overall gradient norm over pre-training, one curve per run;
- accuracy_vs_gflops (Figure 2 / teaser): a metric against GFLOPs per view, unmasked inputs and TO, and baselines
  (plain inputs only);
- accuracy_vs_frames (main Figure 5): a metric at one token budget against the frame count, a line at one
  resolution and, where asked, a band over the spread of other resolutions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from flux.errors import FluxError
from flux.eval.protocols import setting_key, unmasked_frames
from flux.io import atomic_path
from flux.tables.cells import dig
from flux.tables.job_spec import FigureJob

logger = logging.getLogger(__name__)


def read_log(path: str) -> list[dict[str, Any]]:
    log = Path(path)
    if not log.is_file():
        raise FluxError(f"training log {log} is missing; train its run first (snakemake {log})")
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not records:
        raise FluxError(f"training log {log} has no logged step; lower training.log_every so that a run logs")
    return records


def _grad_norms(axes, spec: FigureJob) -> None:
    for label, files in spec.runs.items():
        records = read_log(files["log"])
        steps = [record["step"] for record in records]
        for group in spec.groups:
            values = [record["grad_norm"].get(group) for record in records]
            if any(value is None for value in values):
                raise FluxError(f"{files['log']}: gradient norms lack the module group '{group}'")
            axes.plot(steps, values, marker="o", label=f"{group}" if len(spec.runs) == 1 else f"{label}: {group}")
    axes.set_xlabel("step")
    axes.set_ylabel("gradient L2 norm")
    axes.set_yscale("log")


def _convergence(axes, spec: FigureJob) -> None:
    for label, files in spec.runs.items():
        records = read_log(files["log"])
        summary = json.loads(Path(files["summary"]).read_text(encoding="utf-8"))
        validation = summary.get("validation") or {}
        suffix = f" (val top-1 {100 * validation['top1']:.1f})" if "top1" in validation else ""
        axes.plot([r["step"] for r in records], [r["loss"] for r in records], marker="o", label=label + suffix)
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")


def _total_grad_norm(axes, spec: FigureJob) -> None:
    for label, files in spec.runs.items():
        records = read_log(files["log"])
        axes.plot([r["step"] for r in records], [r["grad_norm"]["total"] for r in records], marker="o", label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("overall gradient L2 norm")
    axes.set_yscale("log")  # the first steps' norms are a hundred times the later ones, where the runs differ


def _results(path: str, panel: dict[str, Any]) -> dict[str, Any]:
    metrics = Path(path)
    if not metrics.is_file():
        raise FluxError(f"metrics file {metrics} is missing; run its evaluation (snakemake {metrics})")
    record = json.loads(metrics.read_text(encoding="utf-8"))
    return record["results"][panel["role"]] if "role" in panel else next(iter(record["results"].values()))


def _setting(results: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    if key not in results:
        raise FluxError(f"{path}: no result '{key}'; its protocol does not evaluate that input (config/tables.yaml protocols)")
    return results[key]


def _plain(results: dict[str, Any], budget: int, path: str) -> dict[str, Any]:
    """The unmasked 224^2 input at `budget` tokens (2048: 8 x 224^2), where accuracy-vs-GFLOPs curves sit."""
    return _setting(results, setting_key(unmasked_frames(budget), 224, budget), path)


def _accuracy_vs_gflops(figure, spec: FigureJob) -> None:
    from matplotlib import ticker

    panels = spec.panels
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for label, path in panel["metrics"].items():
            results = _results(path, panel)
            plain, optimised, costs = [], [], []
            for budget in panel["budgets"]:
                setting = _plain(results, budget, path)
                costs.append(setting["gflops"])
                plain.append(dig(setting, panel["metric"], path))
                optimised.append(dig(_setting(results, f"to@{budget}", path), panel["metric"], path))
            line = axes.plot(costs, plain, marker="o", label=label)[0]
            axes.plot(costs, optimised, marker="*", linestyle="--", color=line.get_color(), label=f"{label}+ (TO)")
            axes.fill_between(costs, plain, optimised, color=line.get_color(), alpha=0.15)
        for label, path in panel.get("baseline_metrics", {}).items():
            results = _results(path, panel)
            settings = [_plain(results, budget, path) for budget in panel["budgets"]]
            values = [dig(setting, panel["metric"], path) for setting in settings]
            axes.plot([setting["gflops"] for setting in settings], values, marker="s", color="grey", label=label)
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
        axes.set_xlabel("GFLOPs per view")
        axes.set_ylabel(panel["metric"])
        axes.set_title(panel["title"], fontsize=9)
        axes.legend(fontsize=7)


def _band(results: dict[str, Any], frames: int, resolutions: list[int], budget: int, metric: str, path: str) -> list[float]:
    """The metric at each of `resolutions` evaluated for `frames` frames; an input with fewer tokens than the budget is
    not evaluated (8 x 196^2 < 2048), and the band spans the rest."""
    keys = [setting_key(frames, resolution, budget) for resolution in resolutions]
    values = [dig(results[key], metric, path) for key in keys if key in results]
    if not values:
        raise FluxError(f"{path}: none of {keys} was evaluated; the band needs at least one (config/tables.yaml protocols)")
    return values


def _collapsed(panel: dict[str, Any], resolutions: list[int]) -> str:
    """A note where this configuration's scale maps the band's resolutions to one side (tiny: 196-252 -> 56 px)."""
    sides = {panel["pixels"][str(resolution)] for resolution in resolutions}
    return f", all {sides.pop()}px at this scale" if len(sides) == 1 else ""


def _accuracy_vs_frames(figure, spec: FigureJob) -> None:
    panels = spec.panels
    for index, panel in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        frames, budget = panel["frames"], panel["budget"]
        for label, path in panel["metrics"].items():
            results = _results(path, panel)
            line = [
                dig(_setting(results, setting_key(f, panel["resolution"], budget), path), panel["metric"], path) for f in frames
            ]
            drawn = axes.plot(frames, line, marker="o", label=f"{label} ({panel['resolution']}px)")[0]
            resolutions = panel.get("bands", {}).get(label)
            if resolutions:
                spread = [_band(results, f, resolutions, budget, panel["metric"], path) for f in frames]
                axes.fill_between(
                    frames,
                    [min(values) for values in spread],
                    [max(values) for values in spread],
                    color=drawn.get_color(),
                    alpha=0.2,
                    label=f"{label} ({min(resolutions)}-{max(resolutions)}px{_collapsed(panel, resolutions)})",
                )
        axes.set_xticks(frames)
        axes.set_xlabel(f"frames (at most {budget} tokens)")
        axes.set_ylabel(panel["metric"])
        axes.set_title(panel["title"], fontsize=9)
        axes.legend(fontsize=7)


PANEL_FIGURES = {"accuracy_vs_gflops": _accuracy_vs_gflops, "accuracy_vs_frames": _accuracy_vs_frames}
LOG_FIGURES = {"grad_norms": _grad_norms, "convergence": _convergence, "total_grad_norm": _total_grad_norm}


def run(job: dict[str, Any]) -> None:
    """`flux figure`: one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    spec = FigureJob.from_dict(job)
    figure = pyplot.figure(figsize=(9, 4) if spec.panels is not None and len(spec.panels) > 1 else (6, 4), dpi=120)
    if spec.kind in PANEL_FIGURES:
        PANEL_FIGURES[spec.kind](figure, spec)
    else:
        if not spec.runs:
            raise FluxError(f"{spec.figure}: none of its runs is trained in this configuration (training.runs)")
        axes = figure.add_subplot(1, 1, 1)
        LOG_FIGURES[spec.kind](axes, spec)
        axes.legend(fontsize=7)
    figure.suptitle(f"{spec.figure} ({spec.scale} scale)", fontsize=10)
    figure.tight_layout()
    out = Path(spec.out)
    with atomic_path(out) as temporary:
        figure.savefig(temporary, format="png")
    pyplot.close(figure)
    logger.info("wrote %s", out)
