"""The metrics-file figures on hand-made metrics files: what each draws, and what it refuses; the figure entries'
cross-checks against runs and protocols."""

import json

import pytest
from matplotlib import pyplot

from flux.errors import ConfigError, FluxError
from flux.tables import figures
from flux.tables.sources import _check_figure


def metrics_file(tmp_path, name: str, results: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"results": {"k400": results}}))
    return str(path)


def frames_job(tmp_path, metrics: dict, bands: dict | None = None) -> dict:
    panel = {"title": "t", "protocol": "p", "metric": "top1", "budget": 2048, "frames": [8, 12], "resolution": 224,
             "bands": bands or {}, "metrics": metrics}  # fmt: skip
    return {"figure": "f5", "kind": "accuracy_vs_frames", "caption": "c", "scale": "tiny", "panels": [panel],
            "config_digest": "0" * 64, "out": str(tmp_path / "f5.png")}  # fmt: skip


@pytest.fixture
def drawn(monkeypatch):
    """The data of every line and band a figure draws, by legend label."""
    seen = {}

    def savefig(figure, *args, **kwargs):
        for axes in figure.axes:
            seen["yscale"] = axes.get_yscale()
            for line in axes.get_lines():
                seen[line.get_label()] = [list(line.get_xdata()), list(line.get_ydata())]
            for band in axes.collections:
                (path,) = band.get_paths()
                seen[band.get_label()] = path.vertices.tolist()
        original(figure, *args, **kwargs)

    original = pyplot.Figure.savefig
    monkeypatch.setattr(pyplot.Figure, "savefig", savefig)
    return seen


def test_frames_figure_draws_the_line_at_its_resolution_and_the_band_over_the_others(tmp_path, drawn):
    # 8 x 196^2 has fewer than 2048 tokens and is not evaluated: the band at 8 frames spans 224 and 252 only
    any_res = metrics_file(tmp_path, "any", {"8x224@2048": {"top1": 50.0}, "8x252@2048": {"top1": 60.0},
                                             "12x196@2048": {"top1": 40.0}, "12x224@2048": {"top1": 55.0},
                                             "12x252@2048": {"top1": 70.0}})  # fmt: skip
    fix_res = metrics_file(tmp_path, "fix", {"8x224@2048": {"top1": 45.0}, "12x224@2048": {"top1": 47.0}})
    job = frames_job(tmp_path, {"AnyRes": any_res, "FixRes": fix_res}, bands={"AnyRes": [196, 224, 252]})
    job["panels"][0]["pixels"] = {"196": 196, "224": 224, "252": 252}
    figures.run(job)
    assert (tmp_path / "f5.png").stat().st_size > 0
    assert drawn["AnyRes (224px)"] == [[8, 12], [50.0, 55.0]]
    assert drawn["FixRes (224px)"] == [[8, 12], [45.0, 47.0]]
    band = drawn["AnyRes (196-252px)"]
    assert {tuple(point) for point in band} >= {(8, 50.0), (8, 60.0), (12, 40.0), (12, 70.0)}


def test_a_band_one_side_at_this_scale_says_so(tmp_path, drawn):
    flat = metrics_file(tmp_path, "flat", {f"{f}x{r}@2048": {"top1": 50.0} for f in (8, 12) for r in (224, 252)})
    job = frames_job(tmp_path, {"A": flat}, bands={"A": [224, 252]})
    job["panels"][0]["pixels"] = {"224": 56, "252": 56}
    figures.run(job)
    assert "A (224-252px, all 56px at this scale)" in drawn


def test_frames_figure_names_the_input_its_line_lacks(tmp_path):
    partial = metrics_file(tmp_path, "partial", {"8x224@2048": {"top1": 50.0}})
    with pytest.raises(FluxError, match=r"partial.json: no result '12x224@2048'"):
        figures.run(frames_job(tmp_path, {"A": partial}))
    assert not (tmp_path / "f5.png").exists()


def test_a_band_with_no_evaluated_resolution_is_refused(tmp_path):
    line_only = metrics_file(tmp_path, "line", {"8x224@2048": {"top1": 50.0}, "12x224@2048": {"top1": 55.0}})
    with pytest.raises(FluxError, match=r"none of \['8x196@2048', '8x252@2048'\] was evaluated"):
        job = frames_job(tmp_path, {"A": line_only}, bands={"A": [196, 252]})
        job["panels"][0]["pixels"] = {"196": 196, "252": 252}
        figures.run(job)


def test_gflops_figure_draws_baselines_without_token_optimization(tmp_path, drawn):
    flux = metrics_file(tmp_path, "flux", {"8x224@2048": {"top1": 50.0, "gflops": 2.0}, "to@2048": {"top1": 56.0},
                                           "4x224@1024": {"top1": 40.0, "gflops": 1.0}, "to@1024": {"top1": 47.0}})  # fmt: skip
    vit = metrics_file(
        tmp_path, "vit", {"8x224@2048": {"top1": 48.0, "gflops": 2.0}, "4x224@1024": {"top1": 30.0, "gflops": 1.0}}
    )
    panel = {"title": "t", "protocol": "p", "metric": "top1", "budgets": [2048, 1024], "metrics": {"FluxViT": flux},
             "baseline_metrics": {"InternVideo2": vit}}  # fmt: skip
    figures.run({"figure": "teaser", "kind": "accuracy_vs_gflops", "caption": "c", "scale": "tiny", "panels": [panel],
                 "config_digest": "0" * 64, "out": str(tmp_path / "teaser.png")})  # fmt: skip
    assert drawn["FluxViT"] == [[2.0, 1.0], [50.0, 40.0]] and drawn["FluxViT+ (TO)"] == [[2.0, 1.0], [56.0, 47.0]]
    assert drawn["InternVideo2"] == [[2.0, 1.0], [48.0, 30.0]] and "InternVideo2+ (TO)" not in drawn


def test_total_grad_norm_figure_draws_each_runs_logged_steps_on_a_log_scale(tmp_path, drawn):
    runs = {}
    for label, norms in (("FluxViT", [100.0, 2.0, 0.5]), ("ViT", [90.0, 3.0, 0.7])):
        log = tmp_path / f"{label}.jsonl"
        log.write_text(
            "".join(json.dumps({"step": step, "grad_norm": {"total": norm}}) + "\n" for step, norm in enumerate(norms, 1))
        )
        runs[label] = {"log": str(log), "summary": str(tmp_path / f"{label}.json")}
    figures.run({"figure": "supp_figure4", "kind": "total_grad_norm", "caption": "c", "scale": "tiny", "runs": runs,
                 "config_digest": "0" * 64, "out": str(tmp_path / "supp_figure4.png")})  # fmt: skip
    assert drawn["FluxViT"] == [[1, 2, 3], [100.0, 2.0, 0.5]] and drawn["ViT"] == [[1, 2, 3], [90.0, 3.0, 0.7]]
    assert drawn["yscale"] == "log"


PROTOCOLS = {"p": {}}
RUNS = {"a": None, "b": None}


@pytest.mark.parametrize(
    ("figure", "message"),
    [
        ({"kind": "total_grad_norm", "caption": "c", "runs": {"A": "a", "C": "c"}}, r"unknown run\(s\) \['c'\]"),
        ({"kind": "convergence", "caption": "c", "panels": []}, "takes `runs`"),
        ({"kind": "accuracy_vs_frames", "caption": "c", "runs": {"A": "a"}}, "takes `panels`"),
        (
            {"kind": "accuracy_vs_frames", "caption": "c", "panels": [{"protocol": "p", "budgets": [2048], "runs": {}}]},
            r"panels\[0\]: a accuracy_vs_frames panel needs `budget`",
        ),
        (
            {"kind": "accuracy_vs_gflops", "caption": "c", "panels": [{"protocol": "q", "budgets": [2048], "runs": {}}]},
            "unknown protocol 'q'",
        ),
        (
            {
                "kind": "accuracy_vs_frames",
                "caption": "c",
                "panels": [{"protocol": "p", "budget": 2048, "runs": {"A": "a"}, "bands": {"B": [196, 224]}}],
            },
            r"bands: \['B'\] are not legend labels",
        ),
        (
            {
                "kind": "accuracy_vs_gflops",
                "caption": "c",
                "panels": [{"protocol": "p", "budgets": [2048], "runs": {"A": "a"}, "baselines": {"V": "v"}}],
            },
            r"unknown run\(s\) \['v'\]",
        ),
    ],
)
def test_figure_entries_are_checked_against_runs_and_protocols(figure, message):
    with pytest.raises(ConfigError, match=message):
        _check_figure("tables.yaml: figures.f", figure, PROTOCOLS, RUNS)
    if "unknown run" in message:  # the same entry with known runs passes
        known = json.loads(json.dumps(figure).replace('"c"}', '"b"}').replace('"v"}', '"b"}'))
        _check_figure("tables.yaml: figures.f", known, PROTOCOLS, RUNS)
