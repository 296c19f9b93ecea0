"""Vid-TLDR token merging: exact schedules on the real model, size-weighted merges, saliency order, proportional
attention, schedule validation and per-forward state."""

import math

import pytest
import torch

from flux.errors import ConfigError
from flux.models.fluxvit import Attention
from flux.models.vid_tldr import VidTLDR, attention_saliency, forward_with_merging
from tests.models.conftest import D


def video(batch, frames=8, side=112, seed=0):
    return torch.randn(batch, 3, frames, side, side, generator=torch.Generator().manual_seed(seed))


def uniform_attention(tokens, heads=2, batch=1):
    return torch.full((batch, heads, tokens, tokens), 1.0 / tokens)


def check_bookkeeping(reducer, batch, patches, original):
    """Sizes: CLS 1, every token at least 1, summing to the original count; the assignment agrees with them."""
    sizes = reducer.sizes
    assert sizes.shape == (batch, 1 + patches)
    assert torch.all(sizes[:, 0] == 1) and torch.all(sizes >= 1)
    assert torch.all(sizes[:, 1:].sum(dim=1) == original)
    assert reducer.assignment.shape == (batch, original)
    for b in range(batch):
        counts = torch.bincount(reducer.assignment[b], minlength=patches)
        assert torch.equal(counts.float(), sizes[b, 1:])


@pytest.mark.parametrize("batch", [1, 3])
def test_schedule_is_met_after_every_scheduled_block(tiny, batch):
    x = video(batch)  # 8 x 8 x 8 = 512 patch tokens
    reducer = VidTLDR([384, 256, 128])
    with torch.no_grad():
        features = tiny.forward_features(x, token_reducer=reducer, return_layers=(0, 1, 2, 3))
    assert [features.layers[i].shape[1] for i in range(4)] == [385, 257, 129, 129]
    assert features.tokens.shape == (batch, 1 + 128, D)
    check_bookkeeping(reducer, batch, 128, 512)
    assert reducer.attention_bias().shape == (batch, 1, 1, 129)
    if batch == 3:  # each sample merges as it would alone, whatever the rest of its batch
        sizes, assignment = reducer.sizes, reducer.assignment
        with torch.no_grad():
            alone = tiny.forward_features(x[1:2], token_reducer=reducer).tokens
        assert torch.equal(reducer.sizes, sizes[1:2]) and torch.equal(reducer.assignment, assignment[1:2])
        assert torch.allclose(alone, features.tokens[1:2], atol=1e-5)


@pytest.mark.parametrize(
    "batch, frames, side, schedule",
    [
        (1, 8, 112, [100]),  # 512 -> 100 after one block: more than half must go
        (3, 4, 56, [40, 7, 1]),  # 64 -> 40 -> 7 -> 1
    ],
)
def test_schedule_removing_more_than_half_in_one_block(tiny, batch, frames, side, schedule):
    original = frames * (side // 14) ** 2
    for protect in (True, False):
        reducer = VidTLDR(schedule, protect_foreground=protect)
        with torch.no_grad():
            features = tiny.forward_features(video(batch, frames, side), token_reducer=reducer)
        assert features.tokens.shape == (batch, 1 + schedule[-1], D)
        assert torch.isfinite(features.tokens).all()
        check_bookkeeping(reducer, batch, schedule[-1], original)
        counts = [original, *schedule]
        for block, (before, after) in enumerate(zip(counts, counts[1:])):
            if before > 2 * after:  # one bipartite step removes at most half
                assert reducer.steps[block] >= 2


def test_merged_tokens_are_size_weighted_averages():
    """Hand-built tokens with uniform attention (no saliency): the merges are known in advance."""
    e = torch.eye(6, dtype=torch.float64)
    cls = torch.tensor([[0.5, -1.0, 2.0, 0.0, 0.0, 3.0]], dtype=torch.float64)
    # after block 0, 6 -> 4 patches: A = {p0, p2, p4}, B = {p1, p3, p5}; p0 -> p1 (cos 1), p2 -> p3 (cos .995)
    # merge, p4 (best cos .707 with p5) stays
    p = torch.stack([e[0], 3 * e[0], 2 * e[1], e[1] + 0.1 * e[2], e[2], e[2] + e[3]])
    x0 = torch.cat([cls, p])[None]
    reducer = VidTLDR([4, 2, 2], proportional_attention=True)
    out0, bias0 = reducer.reduce(0, x0, uniform_attention(7).double())
    assert torch.equal(out0[0, 0], x0[0, 0])
    expected0 = torch.stack([(p[0] + p[1]) / 2, (p[2] + p[3]) / 2, p[4], p[5]])
    assert torch.allclose(out0[0, 1:], expected0, atol=1e-12)
    assert reducer.sizes.tolist() == [[1, 2, 2, 1, 1]]
    assert torch.allclose(bias0, torch.tensor([0, math.log(2), math.log(2), 0, 0], dtype=torch.float64).view(1, 1, 1, 5))

    # block 1, new tokens q with sizes (2, 2, 1, 1); A = {q0, q2}, B = {q1, q3}: q0 -> q3, q2 -> q1
    q = torch.stack([4 * e[0], e[2] + 0.2 * e[3], 2 * e[2], 5 * (e[0] + 0.2 * e[1])])
    x1 = torch.cat([cls, q])[None]
    out1, bias1 = reducer.reduce(1, x1, uniform_attention(5).double())
    size = torch.tensor([2.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    expected1 = torch.stack(
        [
            (size[1] * q[1] + size[2] * q[2]) / (size[1] + size[2]),
            (size[3] * q[3] + size[0] * q[0]) / (size[3] + size[0]),
        ]
    )
    assert out1.shape == (1, 3, 6)
    assert torch.equal(out1[0, 0], x1[0, 0])  # CLS untouched
    assert torch.allclose(out1[0, 1:], expected1, atol=1e-12)
    assert reducer.sizes.tolist() == [[1, 3, 3]]  # sizes add up: 2 + 1 and 1 + 2
    assert reducer.assignment.tolist() == [[1, 1, 0, 0, 0, 1]]  # p0, p1 -> q0 -> q3; p2, p3 -> q1; p4 -> q2 -> q1
    assert torch.allclose(bias1, torch.tensor([0, math.log(3), math.log(3)], dtype=torch.float64).view(1, 1, 1, 3))

    # block 2 keeps 2 patch tokens: nothing merges, and the bias still carries the sizes for the later blocks
    out2, bias2 = reducer.reduce(2, out1, uniform_attention(3).double())
    assert out2 is out1 and torch.equal(bias2, bias1) and reducer.steps[2] == 0


def saliency_case():
    """8 patch tokens; 2 and 5 attend sharply (one-hot rows), the rest uniformly. Salient 2 points exactly as
    background 1, background 4 exactly as salient 5, so similarity alone merges them first."""
    tokens = 9
    attention = uniform_attention(tokens, heads=3)
    for patch, key in ((2, 7), (5, 0)):
        attention[:, :, 1 + patch] = 0
        attention[:, :, 1 + patch, key] = 1
    p = torch.randn(8, 16, generator=torch.Generator().manual_seed(3))
    p[2] = 2 * p[1]
    p[5] = 0.5 * p[4]
    x = torch.cat([torch.randn(1, 16), p])[None]
    return x, attention


def test_saliency_scores_sharp_attention_as_foreground():
    x, attention = saliency_case()
    expected = torch.tensor([[0, 0, 1, 0, 0, 1, 0, 0]], dtype=torch.float32)
    assert torch.allclose(attention_saliency(attention, "entropy"), expected)
    assert torch.allclose(attention_saliency(attention, "gini"), expected)
    assert torch.equal(attention_saliency(attention, "none"), torch.zeros(1, 8))
    assert torch.equal(attention_saliency(uniform_attention(9), "entropy"), torch.zeros(1, 8))  # no contrast: none salient


@pytest.mark.parametrize("target", [7, 6, 5, 4, 3])
def test_salient_tokens_are_not_merged_before_background(target):
    x, attention = saliency_case()
    reducer = VidTLDR([target])
    out, _ = reducer.reduce(0, x, attention)
    assert out.shape == (1, 1 + target, 16)
    for salient in (2, 5):  # alone in its token, value untouched
        holder = reducer.assignment[0, salient]
        assert int((reducer.assignment[0] == holder).sum()) == 1
        assert torch.equal(out[0, 1 + holder], x[0, 1 + salient])
    # the background is what went: sizes add up over the background tokens alone
    background = [i for i in range(8) if i not in (2, 5)]
    assert len(set(reducer.assignment[0, background].tolist())) == target - 2


def test_similarity_alone_would_merge_the_salient_tokens():
    x, attention = saliency_case()
    reducer = VidTLDR([6], saliency="none")
    reducer.reduce(0, x, attention)
    assignment = reducer.assignment[0]
    assert assignment[2] == assignment[1] and assignment[4] == assignment[5]


def test_proportional_attention_bias_is_log_size_on_the_key_axis():
    torch.manual_seed(0)
    attention = Attention(16, 2, local_embedding=True).eval()
    c, t, u = torch.randn(3, 16).unbind(0)
    with torch.no_grad():
        duplicated, _ = attention(torch.stack([c, t, t, t, u])[None])
        merged, _ = attention(torch.stack([c, t, u])[None], bias=torch.log(torch.tensor([1.0, 3.0, 1.0])).view(1, 1, 1, 3))
    # a token of size 3 with bias log 3 is attended exactly as its three copies
    assert torch.allclose(merged[0], duplicated[0, [0, 1, 4]], atol=1e-6)

    x, attn = saliency_case()
    reducer = VidTLDR([4])
    _, bias = reducer.reduce(0, x, attn)
    assert bias.shape == (1, 1, 1, 5)
    assert torch.allclose(bias[0, 0, 0], reducer.sizes[0].log())
    assert VidTLDR([4], proportional_attention=False).reduce(0, x, attn)[1] is None
    assert VidTLDR([8]).reduce(0, x, attn)[1] is None  # nothing merged yet: plain attention


@pytest.mark.parametrize(
    "options",
    [
        {"schedule": []},
        {"schedule": [0]},
        {"schedule": [512, -1]},
        {"schedule": [256, 384]},
        {"schedule": [256.0]},
        {"schedule": [True]},
        {"schedule": [256], "start_block": -1},
        {"schedule": [256], "saliency": "variance"},
    ],
)
def test_invalid_schedules_raise(options):
    with pytest.raises(ConfigError):
        VidTLDR(**options)


def test_forward_with_merging_resets_state_and_matches_the_manual_path(tiny):
    reducer = VidTLDR([48, 30], start_block=1)
    assert [reducer.applies_after(i) for i in range(4)] == [False, True, True, False]
    small = video(2, frames=4, side=56)
    logits = forward_with_merging(tiny, small, reducer, head=1)
    assert logits.shape == (2, 5)
    logits.sum().backward()  # merging is differentiable in the tokens
    assert tiny.patch_embed.proj.weight.grad is not None
    tiny.zero_grad(set_to_none=True)
    with torch.no_grad():
        again = forward_with_merging(tiny, small[:1], reducer, head=1)  # another batch size: state starts afresh
        manual = tiny.forward_head(tiny.forward_features(small[:1], token_reducer=VidTLDR([48, 30], start_block=1)).tokens, 1)
        repeat = forward_with_merging(tiny, small[:1], reducer, head=1)
    assert torch.equal(again, manual) and torch.equal(again, repeat)  # deterministic
    assert torch.allclose(again, logits[:1].detach(), atol=1e-5)
    with pytest.raises(ConfigError):
        forward_with_merging(tiny, small, VidTLDR([48, 30, 20, 10], start_block=1))  # past the 4th block


def test_reduce_out_of_order_raises():
    x, attention = saliency_case()
    reducer = VidTLDR([6, 4], start_block=2)
    with pytest.raises(RuntimeError):
        reducer.reduce(3, x, attention)  # block 2 never ran in this pass
    with pytest.raises(ValueError):
        reducer.reduce(5, x, attention)
    out, _ = reducer.reduce(2, x, attention)
    with pytest.raises(RuntimeError):
        reducer.reduce(3, x, attention)  # not the tokens the reducer returned
    assert reducer.reduce(3, out, attention[..., :7, :7].softmax(-1))[0].shape == (1, 5, 16)
