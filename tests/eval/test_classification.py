"""Multi-view accuracy, view gathering, clip aggregation and zero-shot scores on hand-computed cases."""

import math

import pytest
import torch

from flux.errors import ConfigError, FluxError
from flux.eval.aggregate import aggregate_clips
from flux.eval.classification import gather_views, multiview_accuracy
from flux.eval.zeroshot import prompt_embeddings, zero_shot_scores


def logits_of(*probabilities):
    return torch.log(torch.tensor(probabilities, dtype=torch.float64))


def test_multiview_averages_probabilities_and_keeps_undecodable_videos_in_the_denominator():
    view_logits = torch.stack(
        [
            logits_of([0.9, 0.05, 0.05], [0.01, 0.5, 0.49]),  # mean p [.455, .275, .27] -> 0 (mean logits -> 1)
            logits_of([0.2, 0.2, 0.6], [0.2, 0.2, 0.6]),  # -> 2
            logits_of([0.9, 0.05, 0.05], [0.9, 0.05, 0.05]),  # undecodable: wrong whatever its logits
            logits_of([0.6, 0.3, 0.1], [0.6, 0.3, 0.1]),  # -> 0, then 1
        ]
    )
    labels = torch.tensor([0, 2, 0, 1])
    result = multiview_accuracy(view_logits, labels, torch.tensor([True, True, False, True]), topk=(1, 2))
    assert result == {
        "videos": 4,
        "undecodable": 1,
        "top1": 50.0,
        "top1_decodable": 66.6667,
        "top1_hits": "1100",  # per video: right, right, undecodable, wrong (predicts 0 for label 1)
        "top2": 75.0,
        "top2_decodable": 100.0,
    }


def test_views_are_gathered_deduplicated_and_must_be_complete():
    a0, a1, b0, b1 = (torch.tensor([float(i), 0.0]) for i in range(4))
    ids, stacked = gather_views([("a", 0, a0), ("b", 1, b1), ("a", 1, a1), ("b", 0, b0), ("a", 1, a1)], views=2)
    assert ids == ["a", "b"] and torch.equal(stacked, torch.stack([torch.stack([a0, a1]), torch.stack([b0, b1])]))
    with pytest.raises(FluxError, match=r"1 videos lack views .*'b': \[1\]"):
        gather_views([("a", 0, a0), ("a", 1, a1), ("b", 0, b0)], views=2)
    with pytest.raises(FluxError, match="evaluated twice with different logits"):
        gather_views([("a", 0, a0), ("a", 0, a1)], views=1)


def test_clip_aggregations_by_hand():
    clips = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])  # one video, two clips, two classes
    e, e2 = math.e, math.e**2
    expected = {"mean": e / (e + 1), "max": e2 / (e2 + 1), "lse": (1 + e2) / (3 + e2)}
    for method, p0 in expected.items():
        probabilities = aggregate_clips(clips, method).exp()[0]
        assert probabilities[0].item() == pytest.approx(p0) and probabilities.sum().item() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="unknown clip aggregation 'median'"):
        aggregate_clips(clips, "median")


def test_zero_shot_ensembles_differ_by_the_per_class_norm():
    table = {"x a": [1.0, 0.0], "y a": [0.0, 1.0], "x b": [0.6, 0.8], "y b": [0.6, 0.8]}

    def encode(prompts):
        return torch.tensor([table[prompt] for prompt in prompts])

    prompts = prompt_embeddings(encode, ["a", "b"], ["x {}", "y {}"])
    video = torch.tensor([[2.0, 0.0]])
    # embedding ensemble: a -> normalise([.5, .5]) . [1, 0] = .7071; b -> .6
    assert zero_shot_scores(video, prompts, "embedding")[0].tolist() == pytest.approx([math.sqrt(0.5), 0.6])
    # score ensemble: a -> (1 + 0) / 2 = .5; b -> (.6 + .6) / 2 = .6: the ranking flips
    assert zero_shot_scores(video, prompts, "score")[0].tolist() == pytest.approx([0.5, 0.6])
    with pytest.raises(ConfigError, match="must each contain"):
        prompt_embeddings(encode, ["a"], ["no slot"])
