"""The claims table on hand-made metrics files: effects, intervals, verdicts, the paper's effect, and what is refused."""

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from flux.errors import ConfigError, FluxError
from flux.tables.claims import render
from flux.tables.job_spec import ClaimsJob


def metrics_file(tmp_path, name: str, results: dict) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"results": {"k400": results}}))
    return str(path)


def job(tmp_path, claims: list[dict]) -> ClaimsJob:
    numbers = tmp_path / "paper_numbers.yaml"
    values = {"group4": [79.2, 80.3], "random": [78.6, 79.0]}
    numbers.write_text(yaml.safe_dump({"main_table2": {"caption": "Selectors", "tolerance": 0.5, "values": values}}))
    spec = {"table": "claims", "kind": "claims", "scale": "tiny", "claims": claims, "paper_numbers": str(numbers),
            "config_digest": "0" * 64, "out": str(tmp_path / "claims.tex")}  # fmt: skip
    return ClaimsJob.from_dict(spec)


def claim(better: dict, against: dict | None, **fields) -> dict:
    return {"id": "c", "claim": "A beats B", "note": "", "protocol": "ablation", "role": None,
            "sides": [better, *([against] if against else [])], "paper_table": None, "paper_better": [],
            "paper_against": [], **fields}  # fmt: skip


def side(path: str | None, keys=("8x224@2048",), metric="top1") -> dict:
    return {"run": "r", "keys": list(keys), "metric": metric, "metrics": path}


def test_a_clear_gain_on_the_same_videos_is_reproduced_and_its_reverse_contradicted(tmp_path):
    strong = metrics_file(tmp_path, "strong", {"8x224@2048": {"top1": 75.0, "top1_hits": "1" * 30 + "0" * 10}})
    weak = metrics_file(tmp_path, "weak", {"8x224@2048": {"top1": 25.0, "top1_hits": "1" * 10 + "0" * 30}})
    paper = {"paper_table": "main_table2", "paper_better": [["group4", 1]], "paper_against": [["random", 1]]}
    _, data = render(job(tmp_path, [claim(side(strong), side(weak), **paper), {**claim(side(weak), side(strong)), "id": "r"}]))
    gain, loss = data["rows"]
    # 30 of 40 against 10 of 40, every hit of the weak side also a hit of the strong one: +50 points
    assert gain["ours_effect"] == pytest.approx(50.0) and gain["items"] == 40 and 30 < gain["low"] < 50 < gain["high"] < 70
    assert gain["verdict"] == "reproduced" and loss["verdict"] == "contradicted"
    assert gain["paper_effect"] == pytest.approx(80.3 - 79.0)
    assert data["verdicts"] == {"reproduced": 1, "contradicted": 1, "inconclusive": 0, "not measured": 0}
    lines = list(csv.DictReader(io.StringIO(data["files"][".csv"])))
    assert [line["verdict"] for line in lines] == ["reproduced", "contradicted"]


def test_equal_sides_are_inconclusive_and_keys_are_averaged_per_item(tmp_path):
    two = metrics_file(tmp_path, "two", {"a": {"top1": 50.0, "top1_hits": "1100"}, "b": {"top1": 50.0, "top1_hits": "0011"}})
    one = metrics_file(tmp_path, "one", {"a": {"top1": 50.0, "top1_hits": "1010"}})
    _, data = render(job(tmp_path, [claim(side(two, keys=("a", "b")), side(one, keys=("a",)))]))
    (row,) = data["rows"]
    # per item: (1+0)/2 = 0.5 for every video on one side, 1/0 alternating on the other: both mean 0.5
    assert row["ours_effect"] == 0.0 and row["verdict"] == "inconclusive" and row["low"] < 0 < row["high"]


def test_retrieval_against_chance_uses_the_gallery_size(tmp_path):
    ranks = {"dual_softmax": {"t2v": {"R@1": 75.0}, "t2v_ranks": [0, 0, 0, 2]}, "videos": 4}
    path = metrics_file(tmp_path, "clip", {"8x224@2048": ranks})
    _, data = render(job(tmp_path, [claim(side(path, metric="dual_softmax.t2v.R@1"), None)]))
    (row,) = data["rows"]
    assert row["ours_effect"] == pytest.approx(75.0 - 25.0)  # 3 of 4 captions find their video first; chance 1 / 4
    recall5 = {"dual_softmax": {"t2v": {"R@5": 75.0}, "t2v_ranks": [0, 1, 4, 9]}, "videos": 10}
    path = metrics_file(tmp_path, "clip5", {"8x224@2048": recall5})
    _, data = render(job(tmp_path, [claim(side(path, metric="dual_softmax.t2v.R@5"), None)]))
    assert data["rows"][0]["ours_effect"] == pytest.approx(75.0 - 50.0)  # chance of R@5 among 10 videos: 5 / 10


def test_untrained_runs_are_listed_as_not_measured(tmp_path):
    tex, data = render(job(tmp_path, [claim(side(None), side(None))]))
    assert data["rows"][0]["verdict"] == "not measured" and "not trained in this configuration" in tex


def test_metrics_without_per_item_outcomes_are_refused_with_the_fix(tmp_path):
    old = metrics_file(tmp_path, "old", {"8x224@2048": {"top1": 50.0}})
    with pytest.raises(FluxError, match="keeps no per-item outcomes .* re-run the evaluation"):
        render(job(tmp_path, [claim(side(old), side(old))]))
    short = metrics_file(tmp_path, "short", {"8x224@2048": {"top1": 50.0, "top1_hits": "10"}})
    longer = metrics_file(tmp_path, "longer", {"8x224@2048": {"top1": 50.0, "top1_hits": "1000"}})
    with pytest.raises(FluxError, match="must share a test set"):
        render(job(tmp_path, [claim(side(short), side(longer))]))


def test_every_configuration_plans_its_claims(tmp_path):
    from flux.config import load_config
    from flux.jobs import table_spec
    from tests.paths import REPO

    for files in (["config.yaml"], ["config.yaml", "micro.yaml"], ["paper.yaml"]):
        spec = ClaimsJob.from_dict(table_spec(load_config([REPO / "config" / name for name in files]), "claims"))
        assert len(spec.claims) >= 8 and all(claim.sides for claim in spec.claims)


def test_no_hit_against_chance_is_inconclusive_not_contradicted(tmp_path):
    # 0 of 32 captions retrieve their video first; chance is 1 / 32: as likely as not by chance alone
    misses = {"dual_softmax": {"t2v": {"R@1": 0.0}, "t2v_ranks": [5] * 32}, "videos": 32}
    path = metrics_file(tmp_path, "misses", {"8x224@2048": misses})
    (row,) = render(job(tmp_path, [claim(side(path, metric="dual_softmax.t2v.R@1"), None)]))[1]["rows"]
    assert row["ours_effect"] == pytest.approx(-3.125) and row["low"] < 0 < row["high"] and row["verdict"] == "inconclusive"


def test_a_held_out_choice_compares_with_the_plain_input_on_the_same_videos(tmp_path):
    held_out = {"top1": 75.0, "top1_hits": "1110", "plain": {"top1": 25.0, "top1_hits": "1000"}, "videos": 4}
    path = metrics_file(tmp_path, "held_out", {"to_held_out@2048": held_out})
    chosen = side(path, keys=("to_held_out@2048",))
    plain = side(path, keys=("to_held_out@2048",), metric="plain.top1")
    (row,) = render(job(tmp_path, [claim(chosen, plain)]))[1]["rows"]
    assert row["ours_effect"] == pytest.approx(50.0) and row["items"] == 4  # 3 of 4 against 1 of 4, paired


def log_file(tmp_path, name: str, norms: list[float]) -> str:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(
        "".join(json.dumps({"step": step + 1, "grad_norm": {"total": norm}}) + "\n" for step, norm in enumerate(norms))
    )
    return str(path)


def test_a_training_log_claim_measures_the_relative_reduction_over_shared_steps(tmp_path):
    lower = log_file(tmp_path, "flux", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    higher = log_file(tmp_path, "vit", [2.0, 4.0, 6.0, 8.0])  # logged 4 steps only: the first 4 are paired
    log_claim = {**claim(side(lower, keys=()), side(higher, keys=())), "protocol": None, "log": "grad_norm.total"}
    (row,) = render(job(tmp_path, [log_claim]))[1]["rows"]
    # steps 1-4: means 2.5 and 5: 50% lower at every step
    assert (row["ours_effect"], row["low"], row["high"], row["items"]) == (50.0, 50.0, 50.0, 4) and row["verdict"] == "reproduced"
    reverse = {**log_claim, "sides": log_claim["sides"][::-1]}
    assert render(job(tmp_path, [reverse]))[1]["rows"][0]["verdict"] == "contradicted"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"protocol": "ablation", "log": "grad_norm.total"}, "either `protocol`"),
        ({"log": "grad_norm.total", "better": {"run": "ft_flux_single_k400", "keys": ["k"]}}, "name a run only"),
        ({"protocol": "ablation", "better": {"run": "ft_flux_single_k400"}}, "needs `keys`"),
    ],
)
def test_claim_entries_are_either_evaluation_or_log_claims(tmp_path, entry, message):
    from flux.config import load_config
    from flux.tables.sources import load_table_document
    from tests.paths import REPO

    document = yaml.safe_load((REPO / "config" / "tables.yaml").read_text())
    base = {"id": "x", "claim": "c", "better": {"run": "ft_flux_single_k400", "keys": ["8x224@2048"]}}
    base["against"] = {"run": "ft_vit_group4_k400", "keys": ["8x224@2048"]}
    document["claims"] = [{**base, **entry}]
    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump(document))
    config = load_config([REPO / "config" / "config.yaml"])
    with pytest.raises(ConfigError, match=message):
        load_table_document(path, [], config.runs, config.roles)


def test_seed_replicas_are_read_per_seed_and_widen_the_interval(tmp_path):
    # 40 videos; better's three seeds hit 30, 30 and 10 of them, against's three seeds 20 each
    def hits(count: int) -> str:
        return "1" * count + "0" * (40 - count)

    better = [
        metrics_file(tmp_path, f"b{seed}", {"8x224@2048": {"top1": 0.0, "top1_hits": hits(n)}})
        for seed, n in enumerate((30, 30, 10))
    ]
    against = [metrics_file(tmp_path, f"a{seed}", {"8x224@2048": {"top1": 0.0, "top1_hits": hits(20)}}) for seed in range(3)]
    first_seed_only = claim(side(better[0]), side(against[0]))
    replicated = claim({**side(better[0]), "replicas": better[1:]}, {**side(against[0]), "replicas": against[1:]})
    _, data = render(job(tmp_path, [first_seed_only, {**replicated, "id": "seeds"}]))
    single, seeds = data["rows"]
    assert single["seeds"] == "1/1" and single["verdict"] == "reproduced"  # +25 points on one seed each
    # the mean over seeds: (75 + 75 + 25) / 3 - 50 = +8.3 points; a seed at 25 % puts zero inside the interval
    assert seeds["seeds"] == "3/3" and seeds["ours_effect"] == pytest.approx(100 * (70 / 120 - 0.5), abs=1e-3)
    assert seeds["low"] < 0 < seeds["high"] and seeds["verdict"] == "inconclusive"
    assert "seeds 3/3" in render(job(tmp_path, [replicated]))[0]
    assert [line["seeds"] for line in csv.DictReader(io.StringIO(data["files"][".csv"]))] == ["1/1", "3/3"]


def test_replicas_scoring_other_items_are_refused(tmp_path):
    full = metrics_file(tmp_path, "full", {"8x224@2048": {"top1": 50.0, "top1_hits": "10" * 20}})
    short = metrics_file(tmp_path, "short", {"8x224@2048": {"top1": 50.0, "top1_hits": "10" * 10}})
    with pytest.raises(FluxError, match="seed replicas .* score different numbers of items"):
        render(job(tmp_path, [claim({**side(full), "replicas": [short]}, side(full))]))


def test_the_default_reads_the_claims_seed_replicas_and_paper_scale_does_not_train_them(tmp_path):
    from flux.config import load_config
    from flux.jobs import table_spec
    from tests.paths import REPO

    default = load_config([REPO / "config" / "config.yaml"])
    spec = ClaimsJob.from_dict(table_spec(default, "claims"))
    replicated = {claim.id: claim for claim in spec.claims if any(side.replicas for side in claim.sides)}
    assert "fluxvit_modules" in replicated
    better, against = replicated["fluxvit_modules"].sides
    assert [Path(path).parent.name for path in better.measured] == [
        "ft_flux_single_k400",
        "ft_flux_single_k400_seed1",
        "ft_flux_single_k400_seed2",
    ]
    assert len(against.measured) == 3 and set(better.measured + against.measured) <= set(spec.inputs()["metrics"])
    better, against = replicated["multi_lengths_low_budgets"].sides
    assert [Path(path).parent.name for path in better.measured][1:] == ["ft_flux_multi_k400_seed1", "ft_flux_multi_k400_seed2"]
    assert [Path(path).name for path in against.measured] == ["budget_sweep.json"] * 3
    paper = load_config([REPO / "config" / "paper.yaml"])
    assert not any(side.replicas for claim in ClaimsJob.from_dict(table_spec(paper, "claims")).claims for side in claim.sides)
    assert not {run for run in paper.selected_runs if "_seed" in run} and "ft_flux_single_k400" in paper.selected_runs


def test_a_replica_that_differs_in_more_than_its_seed_is_refused(tmp_path):
    from flux.config import load_config
    from flux.jobs import table_spec
    from tests.paths import REPO

    runs = tmp_path / "runs.yaml"
    text = (REPO / "config" / "runs.yaml").read_text()
    runs.write_text(text.replace("data: {role: k400}, seed: 2}", "data: {role: k400}, seed: 2, selector: random}", 1))
    config = load_config([REPO / "config" / "config.yaml"], {"runs_file": str(runs)})
    refused = r"claims\.(multi_lengths_low_budgets|fluxvit_modules): ft_flux_single_k400_seed2 is no seed replica .*selector"
    with pytest.raises(ConfigError, match=refused):
        table_spec(config, "claims")


def test_the_grad_norm_figure_and_claim_read_longer_pre_trainings_here_and_the_ablation_ones_at_paper_scale():
    from flux.config import load_config
    from flux.jobs import figure_spec, table_spec
    from tests.paths import REPO

    def read(config):
        logs = {Path(files["log"]).parent.name for files in figure_spec(config, "supp_figure4")["runs"].values()}
        (claim,) = [claim for claim in ClaimsJob.from_dict(table_spec(config, "claims")).claims if claim.log]
        assert {Path(side.measured[0]).parent.name for side in claim.sides} == logs
        return logs

    default = load_config([REPO / "config" / "config.yaml"])
    assert read(default) == {"gradnorm_flux_single", "gradnorm_vit_group4"}
    gradnorm, ablation = default.runs["gradnorm_flux_single"], default.runs["pt_flux_single"]
    assert (gradnorm.optim.epochs, ablation.optim.epochs) == (6, 1)  # 30 logged steps here, the ablation's 5
    for paper in (
        load_config([REPO / "config" / "paper.yaml"]),
        load_config([REPO / "config" / n for n in ("config.yaml", "paper.yaml")]),
    ):
        assert read(paper) == {"pt_flux_single", "pt_vit_group4"}
        assert "gradnorm_flux_single" not in paper.selected_runs and "umt_l" in paper.selected_runs
