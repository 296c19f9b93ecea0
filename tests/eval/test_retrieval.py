"""Retrieval metrics on hand-computed rankings: 1:1, several captions per video, ties, chunking, DSL."""

import numpy as np
import pytest
import torch

from flux.errors import FluxError
from flux.eval.retrieval import query_ranks, rank_metrics, retrieval_metrics


def test_one_to_one_by_hand():
    videos = torch.eye(3)  # S = the (normalised) text features themselves
    texts = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, -1.0]])
    result = retrieval_metrics(texts, videos, [0, 1, 2])
    # T2V rows: [1, 0, 0] -> rank 0; [.8, .6, 0] truth .6 -> rank 1; [0, 0, -1] truth -1 -> rank 2
    assert result["plain"]["t2v"] == {"R@1": 33.3333, "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0}
    # V2T columns: [1, .8, 0] -> 0; [0, .6, 0] -> 0; [0, 0, -1] -> 2
    assert result["plain"]["v2t"] == {"R@1": 66.6667, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 1.6667}
    assert result["texts"] == 3 and result["videos"] == 3


def test_video_to_text_takes_the_best_of_its_captions():
    videos = torch.eye(2)
    texts = torch.tensor([[0.6, 0.8], [1.0, 0.0], [0.0, 1.0]])  # captions 0 and 1 describe video 0
    t2v = query_ranks(texts, videos, [[0], [0], [1]])
    assert t2v.tolist() == [1, 0, 0]  # caption 0 prefers video 1
    v2t = query_ranks(videos, texts, [[0, 1], [2]])
    # video 0 scores captions [.6, 1, 0]: its best caption (1) is first; video 1 scores [.8, 0, 1]: caption 2 first
    assert v2t.tolist() == [0, 0]


def test_ties_rank_against_the_query():
    same = torch.ones(4, 8)
    ranks = query_ranks(same, same, [[index] for index in range(4)])
    assert ranks.tolist() == [3, 3, 3, 3]  # collapsed features: last, not first
    assert rank_metrics(ranks) == {"R@1": 0.0, "R@5": 100.0, "R@10": 100.0, "MdR": 4.0, "MnR": 4.0}


def test_median_rank_floors_an_even_median():
    assert rank_metrics(np.array([0, 1, 4, 9]))["MdR"] == 3.0  # median 2.5 -> floor 2 -> 3


def test_dual_softmax_is_internvideo2s_on_raw_cosine():
    """InternVideo2 evaluation_video_clip with S = videos x texts cosine: t2v = S.T * S.T.softmax(dim=0),
    v2t = S * S.softmax(dim=0) (temperature 1); chunking changes nothing."""
    generator = torch.Generator().manual_seed(0)
    texts, videos = torch.randn(50, 16, generator=generator), torch.randn(40, 16, generator=generator)
    owners = [index % 40 for index in range(50)]
    normalised = [torch.nn.functional.normalize(x.double(), dim=-1) for x in (texts, videos)]
    similarity = normalised[1] @ normalised[0].T  # (videos, texts)
    t2v_scores = similarity.T * similarity.T.softmax(dim=0)
    v2t_scores = similarity * similarity.softmax(dim=0)
    captions_of = [[text for text, owner in enumerate(owners) if owner == video] for video in range(40)]
    expected_t2v = [int((row >= row[video]).sum()) - 1 for row, video in zip(t2v_scores, owners)]
    expected_v2t = [int((row >= row[truth].max()).sum()) - 1 for row, truth in zip(v2t_scores, captions_of)]
    assert query_ranks(*normalised, [[video] for video in owners], chunk=7, dual_softmax=True).tolist() == expected_t2v
    assert query_ranks(normalised[1], normalised[0], captions_of, chunk=7, dual_softmax=True).tolist() == expected_v2t
    targets = [[video] for video in owners]
    assert query_ranks(*normalised, targets, chunk=7).tolist() == query_ranks(*normalised, targets, chunk=1000).tolist()
    both = retrieval_metrics(texts, videos, owners, chunk=7)
    assert set(both) >= {"plain", "dual_softmax"} and both["plain"] != both["dual_softmax"]
    assert both["dual_softmax"]["t2v"]["R@1"] == round(100 * float(np.mean(np.array(expected_t2v) < 1)), 4)
    assert both["dual_softmax"]["t2v_ranks"] == expected_t2v  # each caption's rank, kept for paired comparisons


def test_query_scores_do_not_depend_on_the_ground_truth_labels():
    """The Collaborative Experts bug class: nothing about a query's target may shape its scores. Labelling
    each video in turn as the target of one query must read ranks off one fixed ordering, and permuting the
    gallery with its labels must leave every metric unchanged."""
    generator = torch.Generator().manual_seed(1)
    texts, videos = torch.randn(6, 8, generator=generator), torch.randn(6, 8, generator=generator)
    normalised = [torch.nn.functional.normalize(x.double(), dim=-1) for x in (texts, videos)]
    ranks_by_target = [query_ranks(normalised[0][:1], normalised[1], [[video]])[0] for video in range(6)]
    assert sorted(ranks_by_target) == list(range(6))  # a permutation: one ordering, read at each label
    order = torch.randperm(6, generator=generator)
    position = torch.empty_like(order)
    position[order] = torch.arange(6)
    owners = list(range(6))
    assert retrieval_metrics(texts, videos, owners) == retrieval_metrics(texts, videos[order], position.tolist())


def test_bad_inputs_name_the_problem():
    good = torch.eye(3)
    broken = good.clone()
    broken[1, 0] = float("nan")
    with pytest.raises(FluxError, match=r"text features of items \[1\] are not finite"):
        retrieval_metrics(broken, good, [0, 1, 2])
    with pytest.raises(FluxError, match="caption-to-video indices must lie in"):
        retrieval_metrics(good, good, [0, 1, 3])
    with pytest.raises(FluxError, match=r"queries \[2\] have no ground truth"):
        retrieval_metrics(good, good, [0, 1, 1])  # video 2 has no caption: its V2T query cannot be scored
