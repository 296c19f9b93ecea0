"""`flux evaluate` on real mp4 files: multi-view accounting with an undecodable video, TO bookkeeping,
Vid-TLDR settings, determinism, and a missing checkpoint named in the error."""

import json

import numpy as np
import pytest
import torch

from flux.errors import FluxError
from flux.eval.runner import run
from flux.models.fluxvit import build_model


def job(kinetics, checkpoint, tmp_path, **changes):
    data, manifest = kinetics
    spec = {
        "eval": "toy/test",
        "run": "toy",
        "protocol": "test",
        "task": "classification",
        "views": [2, 3],
        "aggregate": "softmax_mean",
        "roles": [{"role": "k400", "dataset": "toy", "manifest": str(manifest), "splits": ["val", "test"]}],
        "settings": [
            {"key": "4x56@32", "frames": 4, "resolution": 56, "budget": 32, "head": 1},
            {"key": "4x56@16", "frames": 4, "resolution": 56, "budget": 16, "head": 2},
            {"key": "4x56~32-16", "frames": 4, "resolution": 56, "budget": None, "head": 2, "merge": [32, 16]},
        ],
        "token_optimization": [
            {
                "key": "to@16",
                "budget": 16,
                "head": 2,
                "frames": [2, 4, 6],
                "resolutions": [42, 56],
                "search": "grid",
                "start": [2, 56],
            }
        ],
        "prompts": ["{}"],
        "checkpoint": str(checkpoint),
        "text_encoder": None,
        "data_dir": str(data),
        "seed": 0,
        "workers": 0,
        "lineage": "0" * 64,
        "out": str(tmp_path / "metrics.json"),
    }
    spec.update(changes)
    return spec


def test_views_undecodable_videos_and_token_optimization(kinetics, checkpoint, tmp_path):
    spec = job(kinetics, checkpoint, tmp_path)
    run(spec)
    record = json.loads((tmp_path / "metrics.json").read_text())
    results = record["results"]["k400"]
    assert set(results) == {"4x56@32", "4x56@16", "4x56~32-16", "to@16"}
    assert record["datasets"]["k400"] == {"dataset": "toy", "split": "val"} and record["views"] == [2, 3]
    plain = results["4x56@32"]
    # 3 val videos, one an empty file: it stays in the denominator, counted; with 2 classes every decodable
    # video is in its top-5, so top-5 is exactly the decodable share
    assert plain["videos"] == 3 and plain["undecodable"] == 1
    assert plain["top5"] == pytest.approx(200 / 3, abs=1e-3) and plain["top5_decodable"] == 100.0
    assert plain["input"] == [4, 56] and plain["budget"] == 32 and plain["head"] == 1 and plain["gflops"] > 0
    assert results["4x56~32-16"]["merge"] == [32, 16] and "gflops" not in results["4x56~32-16"]
    searched = results["to@16"]
    assert len(searched["evaluations"]) == 6  # the whole 3 x 2 grid, each input once
    assert searched["top1"] == max(value for _, _, value in searched["evaluations"])
    assert record["decode_failures"]["k400"] and record["provenance"]["config_sha256"] == "0" * 64
    first = json.loads((tmp_path / "metrics.json").read_text())["results"]
    run(spec)
    again = json.loads((tmp_path / "metrics.json").read_text())["results"]
    strip = lambda r: {k: {m: v for m, v in x.items() if m != "seconds"} for k, x in r["k400"].items()}  # noqa: E731
    assert strip(first) == strip(again)  # deterministic on CPU


def constant_checkpoint(path, favoured: int):
    """A checkpoint whose every head predicts class `favoured` on any input (zero classifier weights, a bias)."""
    model = build_model("fluxvit_tiny", num_classes=2, output_heads=3)
    state = model.state_dict()
    for head in range(3):
        state[f"head.{head}.weight"] = torch.zeros_like(state[f"head.{head}.weight"])
        state[f"head.{head}.bias"] = torch.tensor([0.0, 0.0]).index_fill_(0, torch.tensor([favoured]), 5.0)
    metadata = {"run": "toy", "model": "fluxvit_tiny", "model_switches": {"output_heads": 3}, "num_classes": 2,
                "trained_heads": [{"head": 0, "tokens": 48}, {"head": 1, "tokens": 32}, {"head": 2, "tokens": 16}]}  # fmt: skip
    torch.save({"model": state, "metadata": metadata}, path)
    return path


@pytest.mark.parametrize(("favoured", "top1", "top1_decodable"), [(1, 100 / 3, 50.0), (0, 100 / 3, 50.0)])
def test_accuracy_is_the_hand_counted_one(kinetics, tmp_path, favoured, top1, top1_decodable):
    """The val split holds a 'moving left' (class 0) and a 'moving right' (class 1) video, and an empty file
    labelled 'moving right': a model that always says class 1 is right on 1 of 3 videos (1 of the 2 decodable),
    one that always says class 0 also on 1 of 3 (the undecodable one counts as wrong whatever its label)."""
    path = constant_checkpoint(tmp_path / "constant.pt", favoured)
    run(job(kinetics, path, tmp_path, token_optimization=[], settings=[job(kinetics, path, tmp_path)["settings"][0]]))
    result = json.loads((tmp_path / "metrics.json").read_text())["results"]["k400"]["4x56@32"]
    assert result["top1"] == pytest.approx(top1, abs=1e-3) and result["top1_decodable"] == pytest.approx(top1_decodable)
    assert result["top5"] == pytest.approx(200 / 3, abs=1e-3)  # 2 classes: every decodable video is in its top-5


def test_clip_aggregation_combines_the_views_as_asked(kinetics, checkpoint, tmp_path, monkeypatch):
    """The runner hands the per-view logits (videos x views x classes) to the configured aggregation and scores
    its output: an aggregation that says each video's true class gives 2 of 3 (the undecodable one is wrong)."""
    from flux.eval import runner as runner_module

    calls = []

    def truthful(logits, method):
        calls.append((method, tuple(logits.shape)))
        return torch.nn.functional.one_hot(torch.tensor([0, 1, 1]), 2).float().log()  # the labels, in video order

    monkeypatch.setattr(runner_module, "aggregate_clips", truthful)
    run(
        job(
            kinetics,
            checkpoint,
            tmp_path,
            aggregate="lse",
            token_optimization=[],
            settings=job(kinetics, checkpoint, tmp_path)["settings"][:1],
        )
    )
    result = json.loads((tmp_path / "metrics.json").read_text())["results"]["k400"]["4x56@32"]
    assert calls == [("lse", (3, 6, 2))]
    assert result["aggregate"] == "lse" and result["top1"] == pytest.approx(200 / 3, abs=1e-3)


def test_a_missing_checkpoint_is_named(kinetics, tmp_path):
    with pytest.raises(FluxError, match="nowhere/final.pt does not exist"):
        run(job(kinetics, tmp_path / "nowhere" / "final.pt", tmp_path))


def test_a_head_the_run_never_trained_is_refused(kinetics, tmp_path):
    """A checkpoint that trained only head 1 (Flux-Single, Flux-CLIP) cannot be read at head 2."""
    model = build_model("fluxvit_tiny", num_classes=2, output_heads=3)
    metadata = {"run": "toy", "model": "fluxvit_tiny", "model_switches": {"output_heads": 3}, "num_classes": 2,
                "trained_heads": [{"head": 1, "tokens": 32}]}  # fmt: skip
    path = tmp_path / "single.pt"
    torch.save({"model": model.state_dict(), "metadata": metadata}, path)
    with pytest.raises(FluxError, match=r"run 'toy' never trained output head\(s\) \[2\] \(trained: \[1\]\)"):
        run(job(kinetics, path, tmp_path))
    assert not (tmp_path / "metrics.json").exists()


def test_a_damaged_checkpoint_is_named(kinetics, tmp_path):
    damaged = tmp_path / "final.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(FluxError, match=rf"checkpoint {damaged} is damaged .*snakemake {damaged} --force"):
        run(job(kinetics, damaged, tmp_path))


def test_a_split_the_manifest_lacks_is_named(kinetics, checkpoint, tmp_path):
    spec = job(kinetics, checkpoint, tmp_path)
    spec["roles"] = [{**spec["roles"][0], "splits": ["holdout"]}]
    with pytest.raises(FluxError, match=r"none of the evaluation splits \['holdout'\] exists \(splits: \["):
        run(spec)


class StubEvaluator:
    """Per-video top-1 outcomes of each input, by hand; records which inputs were measured."""

    task = "classification"

    def __init__(self, outcomes: dict[tuple[int, int], str]):
        self.outcomes, self.measured = outcomes, []

    def measure(self, frames, resolution, variants):
        self.measured.append((frames, resolution))
        hits = self.outcomes[(frames, resolution)]
        result = {"input": [frames, resolution], "top1": 100 * hits.count("1") / len(hits), "top1_hits": hits}
        return {variant: result for variant in variants}


def test_held_out_halves_are_disjoint_seeded_and_cover_every_video():
    from flux.eval.runner import held_out_halves

    choice, score = held_out_halves(7, seed=0)
    assert choice.sum() == 3 and score.sum() == 4 and not (choice & score).any() and (choice | score).all()
    again, _ = held_out_halves(7, seed=0)
    other, _ = held_out_halves(7, seed=1)
    assert (again == choice).all() and any((held_out_halves(7, seed)[0] != choice).any() for seed in range(1, 5))
    assert other.sum() == 3


def test_held_out_token_optimization_chooses_on_one_half_and_scores_on_the_other(monkeypatch):
    from flux.eval import runner
    from flux.eval.spec import Search

    # videos 0-3 choose, 4-7 score (a fixed split for the hand count)
    monkeypatch.setattr(runner, "held_out_halves", lambda videos, seed: (np.arange(videos) < 4, np.arange(videos) >= 4))
    outcomes = {
        (2, 56): "0000" + "1100",  # the start: 0% on the choice half, 50% on the scoring half
        (4, 56): "1100" + "1000",  # best on the choice half (50%), 25% where it is scored
        (6, 56): "1000" + "1111",  # 25% on the choice half: the held-out search stops before it pays off
        (6, 42): "0000" + "0000",
    }
    grid = {"budget": 16, "head": 2, "frames": [2, 4, 6], "resolutions": [42, 56], "search": "heuristic", "start": [2, 56]}
    result = runner.run_held_out_search(StubEvaluator(outcomes), Search(key="to_held_out@16", **grid, held_out=True), seed=0)
    assert result["input"] == [4, 56] and result["top1"] == 25.0 and result["top1_hits"] == "1000"
    assert result["plain"] == {"input": [2, 56], "top1": 50.0, "top1_hits": "1100"} and result["videos"] == 4
    # the choice half's values: the start, the best, a step that does not improve, then step 3 from the best
    assert result["evaluations"] == [[2, 56, 0.0], [4, 56, 50.0], [6, 56, 25.0], [6, 42, 0.0]]
    # choosing on every video, the scoring half's 4 of 4 at 6 x 56 wins: 5 of 8
    assert runner.run_search(StubEvaluator(outcomes), Search(key="to@16", **grid))["input"] == [6, 56]


def test_a_subsampled_evaluation_scores_a_seeded_subset(kinetics, checkpoint, tmp_path):
    from flux.data.datasets import VideoClassification

    data, manifest = kinetics
    full = VideoClassification(manifest, data, "val", train=False)
    subset = VideoClassification(manifest, data, "val", train=False, max_items=2, seed=0)
    assert len(full.rows) == 3 and len(subset.rows) == 2
    assert set(subset.rows["media_path"]) < set(full.rows["media_path"])
    assert list(VideoClassification(manifest, data, "val", train=False, max_items=2, seed=0).rows["media_path"]) == list(
        subset.rows["media_path"]
    )
    with pytest.raises(FluxError, match="training reads its whole split"):
        VideoClassification(manifest, data, "train", train=True, max_items=2)
    run(job(kinetics, checkpoint, tmp_path, max_videos=2))
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["results"]["k400"]["4x56@32"]["videos"] == 2
