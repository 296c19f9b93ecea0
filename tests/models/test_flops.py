"""Analytic MACs (flux.models.flops): by hand, against the paper's GFLOPs, and against torch's FLOP counter."""

from __future__ import annotations

from dataclasses import astuple

import pytest
import torch

from flux.errors import ConfigError
from flux.models.flops import MacBreakdown, gflops, main_flops, measured_macs, model_macs
from flux.models.fluxvit import ModelSize, build_model

TOKENS = (3072, 2048, 1024, 512)
# main Tables 6 and 7, per-view GFLOPs at 12/8/4/2 x 224^2 worth of tokens (reference/paper.md §3.1)
PAPER = {"fluxvit_s": (154, 83, 32, 13), "fluxvit_b": (440, 255, 108, 49)}
# FluxViT-S at 512 tokens counts 13.59: patch embedding (0.12) and the pooling head (0.15) on top of the blocks
# (13.32). No consistent counting gives all eight printed numbers: dropping either term breaks S at 3072 tokens
# (153.88 -> 153.19 or 152.97 against 154), counting the blocks alone breaks five entries; the printed 13 looks
# like the blocks-only estimate or a truncation. Kept as a strict xfail: the analytic count is not bent to it.
S512_REASON = "paper prints 13 for FluxViT-S at 512 tokens; the count gives 13.59 (blocks 13.32 + embed + pooling)"


def paper_cases():
    for name, printed in PAPER.items():
        for tokens, value in zip(TOKENS, printed):
            marks = [pytest.mark.xfail(strict=True, reason=S512_REASON)] if (name, tokens) == ("fluxvit_s", 512) else []
            yield pytest.param(name, tokens, value, marks=marks, id=f"{name}-{tokens}")


@pytest.mark.parametrize(("name", "tokens", "printed"), list(paper_cases()))
def test_paper_gflops(name: str, tokens: int, printed: int) -> None:
    value = gflops(name, tokens)
    assert abs(value - printed) <= max(0.5, 0.02 * printed), f"{name} at {tokens} tokens: {value:.2f} vs paper {printed}"


def test_s512_deviation_is_the_embedding_and_head() -> None:
    # the documented explanation above, as numbers: the blocks alone round to the printed 13
    count = model_macs("fluxvit_s", 512)
    blocks = count.attention_projections + count.attention_matmuls + count.mlp
    assert round(blocks / 1e9) == 13
    assert 13.5 < count.gflops < 13.65


def test_hand_computed() -> None:
    # C=4, H=8, one block, p=2, D=3; 2 kept of 5 embedded patches -> N=3 with CLS; 7 classes
    size = ModelSize(4, 1, 1, mlp_ratio=2.0, patch_size=2, pool_heads=1, clip_dim=3)
    count = model_macs(size, tokens=2, input_patches=5, num_classes=7)
    expected = MacBreakdown(
        patch_embed=5 * (3 * 2 * 2) * 4,  # 240
        attention_projections=3 * 3 * 16 + 3 * 16,  # qkv + proj: 192
        attention_matmuls=2 * 3 * 3 * 4,  # QK^T + AV: 72
        mlp=2 * 3 * 4 * 8,  # 192
        pooling=16 + 2 * 3 * 16 + 2 * 3 * 4 + 4 * 3,  # q of one query, k/v, attention, proj: 148
        classifier=3 * 7,
        total=865,
    )
    assert count == expected
    assert model_macs(size, 2).patch_embed == 2 * 12 * 4  # default: every embedded patch kept


@pytest.mark.parametrize(
    ("tokens", "patches", "classes", "message"),
    [(0, None, 400, "positive"), (10, 5, 400, "at least"), (10, None, -1, "non-negative")],
)
def test_rejects_bad_arguments(tokens: int, patches: int | None, classes: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        model_macs("fluxvit_s", tokens, patches, classes)


def test_unknown_model() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        gflops("fluxvit_xxl", 1024)


_models: dict[str, torch.nn.Module] = {}


def _model(name: str):
    if name not in _models:
        torch.manual_seed(0)
        _models[name] = build_model(name, num_classes=10).eval()
    return _models[name]


@pytest.mark.parametrize(
    ("name", "shape", "budget", "head"),
    [
        ("fluxvit_tiny", (1, 3, 8, 112, 112), None, 0),  # 512 patches, all kept
        ("fluxvit_tiny", (1, 3, 8, 112, 112), 200, 2),  # selection: 512 embedded, 200 kept; third head
        ("fluxvit_s", (1, 3, 4, 112, 112), None, 0),  # 256 patches
        ("fluxvit_s", (1, 3, 4, 112, 112), 100, 1),  # 256 embedded, 100 kept
        ("internvideo2_tiny", (2, 3, 4, 112, 112), None, 0),  # batch 2, one head, no DPN/GLPE
    ],
)
def test_matches_flop_counter(name: str, shape: tuple[int, ...], budget: int | None, head: int) -> None:
    """torch's FlopCounterMode counts the same op set (matmuls, linears, attention) and ignores the same
    element-wise work, so the agreement is exact, per component; FLOPs = 2 MACs is handled by measured_macs."""
    batch, _, frames, height, width = shape
    patches = frames * (height // 14) * (width // 14)
    torch.manual_seed(1)
    measured = measured_macs(_model(name), torch.randn(shape), budget, head)
    analytic = model_macs(name, budget or patches, patches, num_classes=10)
    assert measured == MacBreakdown(*(batch * value for value in astuple(analytic)))


def test_measured_leaves_parameters_trainable() -> None:
    model = _model("fluxvit_tiny")
    measured_macs(model, torch.randn(1, 3, 2, 28, 28))
    assert all(parameter.requires_grad for parameter in model.parameters())


def test_cli_prints_gflops_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_flops(["--model", "fluxvit_s", "--tokens", "2048"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"{gflops('fluxvit_s', 2048):.1f}" == "83.3"
    assert any("attention_matmuls" in line for line in lines[:-1])

    assert main_flops(["--model", "fluxvit_b", "--tokens", "1024", "--input-patches", "4096", "--num-classes", "174"]) == 0
    assert float(capsys.readouterr().out.strip().splitlines()[-1]) == round(gflops("fluxvit_b", 1024, 4096, 174), 1)


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main_flops(["--model", "nope", "--tokens", "10"]) == 2
    assert main_flops(["--model", "fluxvit_s", "--tokens", "10", "--input-patches", "5"]) == 2
    assert "unknown model" in capsys.readouterr().err
