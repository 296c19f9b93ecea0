"""FluxViT / InternVideo2 vision towers: selection and position embedding, heads, official layout."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from flux.config import load_config
from flux.errors import ConfigError
from flux.models.fluxvit import SIZES, DistillHeads, FluxViT, build_model
from flux.models.posembed import resize_grid, sincos_3d
from tests.models.conftest import HEADS, D
from tests.paths import REPO


def video(batch=2, frames=4, side=56, seed=0):
    return torch.randn(batch, 3, frames, side, side, generator=torch.Generator().manual_seed(seed))


def test_keeping_every_token_equals_the_plain_forward(tiny):
    x = video(frames=4, side=56)  # 4 x 4 x 4 = 64 patches
    with torch.no_grad():
        plain = tiny.forward_features(x).tokens
        assert torch.equal(tiny.forward_features(x, budget=64).tokens, plain)
        assert torch.equal(tiny.forward_features(x, budget=1000).tokens, plain)
        assert tiny.forward_features(x, budget=40).tokens.shape == (2, 41, D)


def test_kept_tokens_carry_their_full_grid_position():
    torch.manual_seed(0)
    assembly = FluxViT(replace(SIZES["fluxvit_tiny"], depth=0), num_classes=3).eval()  # no blocks: tokens as assembled
    x = video(frames=6, side=84)  # grid (6, 6, 6), 216 patches
    with torch.no_grad():
        features = assembly.forward_features(x, budget=50)
        embeddings = assembly.patch_embed(x).reshape(2, 216, -1)
        full = embeddings + assembly.position_embedding((6, 6, 6))
        expected = torch.stack([full[b, features.kept[b]] for b in range(2)])
        assert torch.allclose(features.tokens[:, 1:], expected, atol=1e-6)
        assert torch.allclose(features.tokens[:, 0], (assembly.cls_token + assembly.pos_embed[:, 0])[0].expand(2, -1))


def test_position_embedding_resize_and_cache():
    torch.manual_seed(0)
    model = build_model("fluxvit_tiny", num_classes=3).eval()
    with torch.no_grad():
        model.gpe_proj.depthwise_conv.weight.fill_(2.0)
        reference = model.position_embedding((8, 8, 8))
        # at the reference grid: the projected embedding itself, no interpolation
        assert torch.allclose(reference, 2.0 * model.pos_embed[0, 1:], atol=1e-6)
        hits = model._position_cache.hits
        model.position_embedding((8, 8, 8))
        assert model._position_cache.hits == hits + 1
        model.pos_embed.add_(1.0)  # what an optimiser step does: the cached value is stale now
        assert not torch.allclose(model.position_embedding((8, 8, 8)), reference)
        resized = model.position_embedding((4, 6, 6))
        assert resized.shape == (4 * 36, D)
    # with autograd on nothing is cached, and gradients reach the embedding and its projection
    model.train()
    hits = model._position_cache.hits
    model(video(batch=1, frames=4, side=56), budget=30).sum().backward()
    assert model._position_cache.hits == hits
    assert model.pos_embed.grad.abs().sum() > 0 and model.gpe_proj.depthwise_conv.weight.grad.abs().sum() > 0


def test_resize_grid_equals_torch_interpolation():
    embedding = torch.randn(6, 5, 7, 9)
    for grid in [(8, 4, 12), (3, 7, 9), (5, 11, 6)]:
        series = embedding.reshape(6, 5, 63).permute(2, 0, 1)
        series = F.interpolate(series, size=grid[0], mode="linear", align_corners=False)
        timed = series.permute(1, 2, 0).reshape(6, grid[0], 7, 9).permute(1, 0, 2, 3)
        expected = F.interpolate(timed, size=grid[1:], mode="bicubic", align_corners=False).permute(1, 0, 2, 3)
        assert torch.allclose(resize_grid(embedding, grid), expected, atol=1e-5)


def test_resize_grid_is_linear_in_time_and_keeps_constant_fields():
    ramp = torch.arange(4.0).reshape(1, 4, 1, 1).expand(1, 4, 3, 3)
    resized = resize_grid(ramp, (7, 3, 3))
    # align_corners=False linear: output t maps to (t + 0.5) * 4/7 - 0.5, clamped to [0, 3]
    expected = ((torch.arange(7.0) + 0.5) * 4 / 7 - 0.5).clamp(0, 3)
    assert torch.allclose(resized[0, :, 1, 1], expected, atol=1e-6)
    constant = torch.full((2, 3, 5, 5), 1.5)
    assert torch.allclose(resize_grid(constant, (6, 9, 7)), torch.full((2, 6, 9, 7), 1.5), atol=1e-5)


def test_sincos_layout():
    embedding = sincos_3d(16, (2, 3, 4))
    assert embedding.shape == (24, 16)
    # the first quarter encodes time only: equal across positions of one frame, different across frames
    assert torch.equal(embedding[0, :4], embedding[11, :4]) and not torch.equal(embedding[0, :4], embedding[12, :4])
    # sin(0) = 0 and cos(0) = 1 at the origin
    assert embedding[0].tolist() == [0.0, 0.0, 1.0, 1.0] + [0.0] * 3 + [1.0] * 3 + [0.0] * 3 + [1.0] * 3


def test_every_shape_the_sampler_draws_runs(tiny, monkeypatch):
    monkeypatch.chdir(REPO)  # config paths are relative to the checkout
    spec = load_config([REPO / "config" / "config.yaml"]).runs["k400_s"].input.spec  # the embedded default's sampler
    with torch.no_grad():
        for frames, resolution in spec.valid_shapes():
            out = tiny(video(batch=1, frames=frames, side=resolution), budget=spec.token_min, head=2)
            assert out.shape == (1, 5)
        odd = tiny.forward_features(video(batch=1, frames=5, side=70), budget=77)  # odd T, not divisible by groups
        assert odd.tokens.shape == (1, 78, D) and odd.grid == (5, 5, 5)


def test_patch_embedding_matches_the_official_dual_patch_norm(tiny):
    """Official: rearrange 'b c t (h p) (w q) -> b (t h w) (p q c)', RMSNorm, back to the image, Conv3d."""
    embed = tiny.patch_embed
    with torch.no_grad():
        embed.norm_before.weight.copy_(torch.rand(588) + 0.5)
        x = video(batch=1, frames=2, side=28)
        b, c, t, h, w, p = 1, 3, 2, 2, 2, 14
        patches = x.reshape(b, c, t, h, p, w, p).permute(0, 2, 3, 5, 4, 6, 1).reshape(b, t * h * w, p * p * c)
        normed = patches * torch.rsqrt(patches.pow(2).mean(-1, keepdim=True) + 1e-6) * embed.norm_before.weight
        image = normed.reshape(b, t, h, w, p, p, c).permute(0, 6, 1, 2, 4, 3, 5).reshape(b, c, t, h * p, w * p)
        conv = F.conv3d(image, embed.proj.weight, embed.proj.bias, stride=(1, p, p))  # (b, C, t, h, w)
        reference = conv.flatten(3).permute(0, 2, 3, 1)
        reference = reference * torch.rsqrt(reference.pow(2).mean(-1, keepdim=True) + 1e-6) * embed.norm.weight
        assert torch.allclose(embed(x), reference, atol=1e-5)


def test_attention_with_local_embedding_by_hand(tiny):
    attention = tiny.blocks[0].attn
    with torch.no_grad():
        attention.lpe.depthwise_conv.weight.copy_(torch.rand(D, 1, 1, 1, 1))
        attention.lpe.depthwise_conv.bias.copy_(torch.rand(D))
        x = torch.randn(2, 7, D)
        out, _ = attention(x)
        q, k, v = attention.qkv(x).chunk(3, dim=-1)
        q, k = attention.q_norm(q), attention.k_norm(k)
        split = lambda t: t.reshape(2, 7, HEADS, D // HEADS).transpose(1, 2)  # noqa: E731
        probabilities = (split(q) @ split(k).transpose(-1, -2) / (D // HEADS) ** 0.5).softmax(-1)
        context = (probabilities @ split(v)).transpose(1, 2).reshape(2, 7, D)
        local = v * attention.lpe.depthwise_conv.weight.reshape(D) + attention.lpe.depthwise_conv.bias
        assert torch.allclose(out, attention.proj(context + local), atol=1e-5)
        explicit, probabilities_out = attention(x, return_attention=True)
        assert torch.allclose(explicit, out, atol=1e-5) and torch.allclose(probabilities_out, probabilities, atol=1e-6)


def test_heads_and_alignment(tiny):
    with torch.no_grad():
        tokens = tiny.forward_features(video()).tokens
        logits = [tiny.forward_head(tokens, head) for head in range(3)]
        assert all(out.shape == (2, 5) for out in logits) and not torch.equal(logits[0], logits[1])
        aligned = tiny.align(tiny.pool(tokens, 2), 1)
        assert torch.allclose(aligned.norm(dim=-1), torch.ones(2), atol=1e-5)
    with pytest.raises(IndexError):
        tiny.pool(tokens, 3)


def test_internvideo2_has_one_head_and_no_flux_modules():
    model = build_model("internvideo2_tiny", num_classes=4).eval()
    keys = model.state_dict().keys()
    assert "head.weight" in keys and "clip_projector.norm1_q.weight" in keys and "fc_norm.weight" in keys
    assert not any(k.startswith(("gpe_proj", "patch_embed.norm", "final_clip_decoder_for_projs")) or ".lpe." in k for k in keys)
    with torch.no_grad():
        assert model(video(batch=1, frames=4, side=56), budget=20).shape == (1, 4)
    with pytest.raises(ValueError, match="one output head"):
        model.pool(torch.zeros(1, 3, 256), 1)


def test_batch_of_one_and_return_layers(tiny):
    with torch.no_grad():
        features = tiny.forward_features(video(batch=1), budget=33, return_layers=[-1, -2])
    assert set(features.layers) == {2, 3} and torch.equal(features.layers[3], features.tokens)


def test_flash_backend_is_an_explicit_switch():
    model = build_model("fluxvit_tiny", num_classes=2, attention="flash")
    with pytest.raises(ConfigError, match="gpu"):
        model(video(batch=1))
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("fluxvit_xl")


def test_parameter_counts_of_the_backbones():
    # InternVideo2-S/B have 23M / 96M parameters (paper Table 6). FluxViT adds the larger position grid,
    # three pooling heads/classifiers and two projectors (~5M for S); the paper's 24M / 97M count one head.
    count = lambda name: sum(p.numel() for p in build_model(name, num_classes=400).parameters()) / 1e6  # noqa: E731
    assert count("internvideo2_s") == pytest.approx(23.35, abs=0.1)
    assert count("fluxvit_s") == pytest.approx(28.85, abs=0.1)


def test_objective_projections_are_built_on_request():
    model = build_model(
        "fluxvit_tiny", num_classes=3, distill=DistillHeads(layers=2, teacher_dim=256, teacher_pooled_dim=256), text_dim=128
    )
    with torch.no_grad():
        features = model.forward_features(video(batch=1), budget=40, return_layers=[-2, -1])
        decoded = [model.clip_decoder[k](features.layers[index]) for k, index in enumerate(sorted(features.layers))]
        pooled = model.pool(features.tokens, 1)
        assert [d.shape for d in decoded] == [(1, 41, 256)] * 2
        assert torch.allclose(decoded[0].norm(dim=-1), torch.ones(1, 41), atol=1e-5)  # L2-normalised targets space
        assert model.final_clip_decoder(pooled).shape == (1, 256) and model.vision_proj(pooled).shape == (1, 128)
    assert not hasattr(build_model("fluxvit_tiny", num_classes=3), "clip_decoder")


def test_module_switches_for_the_table3_ablations():
    plain = build_model("fluxvit_tiny", num_classes=3, dual_patch_norm=False, global_pe=False, local_pe=False)
    keys = plain.state_dict().keys()
    assert not any(".lpe." in k or k.startswith(("gpe_proj", "patch_embed.norm")) for k in keys)
    only_lpe = build_model("fluxvit_tiny", num_classes=3, dual_patch_norm=False, global_pe=False)
    assert any(".lpe." in k for k in only_lpe.state_dict()) and only_lpe.gpe_proj is None
    with torch.no_grad():
        assert plain(video(batch=1), budget=20).shape == (1, 3)


def test_rotary_embedding_is_relative():
    from flux.models.fluxvit import apply_rotary, rotary_tables

    q, k = torch.randn(1, 1, 2, 12), torch.randn(1, 1, 2, 12)
    positions = torch.tensor([[[1, 2, 3], [4, 0, 5]]])
    shifted = positions + torch.tensor([2, 3, 1])

    def score(where):
        tables = rotary_tables(where, 12)
        return (apply_rotary(q, tables)[0, 0, 0] * apply_rotary(k, tables)[0, 0, 1]).sum()

    assert torch.allclose(score(positions), score(shifted), atol=1e-5)  # only the offset between tokens counts
    assert not torch.allclose(score(positions), score(positions * 2), atol=1e-3)
    tables = rotary_tables(positions, 12)
    assert torch.allclose(apply_rotary(q, tables).norm(), q.norm(), atol=1e-5)  # a rotation
    model = build_model("fluxvit_tiny", num_classes=3, rope=True)
    with torch.no_grad():
        assert model(video(batch=2), budget=30).shape == (2, 3)


def test_explicit_kept_indices_and_nested_subsets(tiny):
    from flux.models.selector import nested_subset

    x = video(batch=2)
    with torch.no_grad():
        embeddings = tiny.embed(x)
        kept = tiny.selector(embeddings, 40)
        assert torch.equal(tiny.forward_features(x, kept=kept).tokens, tiny.forward_features(x, budget=40).tokens)
        scores = tiny.selector.token_scores(embeddings)
        subset = nested_subset(kept, scores, 25)
    assert subset.shape == (2, 25) and all(set(subset[b].tolist()) <= set(kept[b].tolist()) for b in range(2))
    # the subset keeps the highest-scoring members of the selection
    for b in range(2):
        dropped = sorted(set(kept[b].tolist()) - set(subset[b].tolist()))
        assert scores[b, subset[b]].min() >= scores[b, dropped].max()


def test_layer_decay_groups_with_timm(tiny):
    from timm.optim import param_groups_layer_decay

    groups = param_groups_layer_decay(tiny, weight_decay=0.05, no_weight_decay_list=tiny.no_weight_decay(), layer_decay=0.5)
    scales = {round(group["lr_scale"], 6) for group in groups}
    # stem 0.5^5, blocks 1..4 -> 0.5^4 .. 0.5^1, heads 1.0 (4 blocks: 6 layers)
    assert scales == {round(0.5**power, 6) for power in range(6)}
    names = {id(parameter): name for name, parameter in tiny.named_parameters()}
    no_decay = {names[id(p)] for group in groups if group["weight_decay"] == 0 for p in group["params"]}
    assert {"pos_embed", "cls_token", "blocks.0.norm1.weight", "head.0.bias"} <= no_decay
    assert "blocks.0.attn.qkv.weight" not in no_decay
