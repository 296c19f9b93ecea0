"""The decoded-view cache on real mp4 files: a cached evaluation scores exactly what an uncached one does (an
undecodable video included), a second one reads the views instead of decoding, and a changed media file or
input names another entry."""

import json
import os

import pytest
import torch

from flux.eval import clip_cache
from flux.eval.runner import run
from tests.eval.test_runner import job


def scores(path):
    record = json.loads(path.read_text())
    results = {key: {m: v for m, v in value.items() if m != "seconds"} for key, value in record["results"]["k400"].items()}
    return results, record["decode_failures"]


@pytest.fixture(scope="module")
def random_selector(checkpoint, tmp_path_factory):
    """The same weights choosing tokens at random: its scores depend on the random stream."""
    payload = torch.load(checkpoint, weights_only=False)
    payload["metadata"]["selector"] = "random"
    path = tmp_path_factory.mktemp("random") / "final.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(("workers", "selector"), [(0, "group"), (1, "group"), (0, "random"), (1, "random")])
def test_cached_scores_are_the_uncached_ones_and_the_second_run_decodes_nothing(
    kinetics, checkpoint, random_selector, tmp_path, monkeypatch, workers, selector
):
    model = random_selector if selector == "random" else checkpoint
    plain = job(kinetics, model, tmp_path, workers=workers, out=str(tmp_path / "plain.json"))
    run(plain)
    cache = tmp_path / "cache"
    run({**plain, "clip_cache": str(cache), "out": str(tmp_path / "cold.json")})
    entries = sorted(cache.iterdir())
    # one entry per input the protocol decodes: 4x56 (settings) and the TO grid's 2/4/6 x 42/56
    assert len(entries) == 6 and all(entry.suffix == ".pt" for entry in entries)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached input was decoded again")

    monkeypatch.setattr(clip_cache.ClipCache, "_decode", staticmethod(no_decoding))
    run({**plain, "clip_cache": str(cache), "out": str(tmp_path / "warm.json")})
    expected = scores(tmp_path / "plain.json")
    assert expected[1]["k400"] == {"empty": 1}  # the undecodable video, counted once, with or without loader workers
    assert scores(tmp_path / "cold.json") == expected and scores(tmp_path / "warm.json") == expected


def test_a_changed_media_file_or_input_names_another_entry(kinetics, tmp_path):
    from flux.data.datasets import VideoClassification

    data, manifest = kinetics
    cache = clip_cache.ClipCache(tmp_path / "cache")

    def entry(**changes):
        settings = {"frames": 4, "resolution": 56, "num_clips": 2, "num_crops": 3, **changes}
        return cache.entry(VideoClassification(manifest, data, "val", train=False, **settings))

    first = entry()
    assert entry() == first and entry(frames=2) != first and entry(num_crops=1) != first and entry(resolution=42) != first
    media = next((data / "raw" / "toy" / "media").glob("vid00000004*.mp4"))
    stat = media.stat()
    os.utime(media, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        assert entry() != first
    finally:
        os.utime(media, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_random_selectors_draws_depend_on_nothing_measured_before(kinetics, random_selector, monkeypatch):
    """Each (input, variant) draws from its own seeded stream: the logits are the same whether or not other
    inputs, loader workers or anything else drew from the global stream first."""
    from flux.eval.runner import Evaluator, Variant, load_model
    from flux.eval.spec import RoleSpec, Scoring

    data, manifest = kinetics
    model, _ = load_model(random_selector)
    role = RoleSpec(role="k400", dataset="toy", manifest=str(manifest), splits=["val"])
    seen = []
    original = Evaluator._metrics
    monkeypatch.setattr(
        Evaluator, "_metrics", lambda self, outputs, *rest: seen.append(outputs) or original(self, outputs, *rest)
    )

    def logits(before: int):
        torch.rand(before)  # other draws from the global stream
        evaluator = Evaluator(Scoring("classification", (1, 1), str(data), seed=3), role, model, torch.device("cpu"), None)
        evaluator.measure(4, 56, [Variant(16, 2)])
        return seen[-1]

    assert torch.equal(logits(0), logits(7)) and torch.equal(logits(0), logits(1000))
