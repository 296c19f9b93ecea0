"""Flux-UMT as InternVideo2 distils: teacher layers, MLP decoders, the student's distillation position embedding."""

import pytest
import torch

from flux.data.sampling import FlexibleSpec
from flux.models.fluxvit import DistillHeads, build_model
from flux.models.heads import MLPDecoder
from flux.train.objectives import Distillation
from flux.train.runs import OptimSettings, ResolvedRun, RunInput, teacher_layers


def test_teacher_layers_as_internvideo2_by_hand():
    # 40 - int(i x 3.34) - 1: int(0, 3.34, 6.68, 10.02, 13.36, 16.7) = 0, 3, 6, 10, 13, 16
    assert teacher_layers(40, 6, 3.34) == [39, 36, 33, 29, 26, 23]
    assert teacher_layers(4, 2, 1.0) == [3, 2]
    with pytest.raises(ValueError, match="do not fit a 4-block teacher"):
        teacher_layers(4, 3, 3.34)


def test_mlp_decoder_is_linear_gelu_linear_norm_l2():
    decoder = MLPDecoder(8, 5)
    assert sorted(decoder.state_dict()) == [
        "head.0.bias",
        "head.0.weight",
        "head.2.bias",
        "head.2.weight",
        "norm.bias",
        "norm.weight",
    ]
    x = torch.randn(3, 7, 8)
    expected = torch.nn.functional.layer_norm(decoder.head[2](torch.nn.functional.gelu(decoder.head[0](x))), (5,), eps=1e-5)
    out = decoder(x)
    assert torch.allclose(out, expected / expected.norm(dim=-1, keepdim=True), atol=1e-6)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3, 7))


def test_distill_position_is_the_sincos_grid_resized_and_gathered():
    torch.manual_seed(0)
    model = build_model("fluxvit_tiny", num_classes=0, distill=DistillHeads(2, 16, 8))
    assert torch.equal(model.clip_pos_embed, torch.cat([torch.zeros(1, 1, 128), model.pos_embed[:, 1:].detach()], 1))
    assert "clip_pos_embed" in model.no_weight_decay() and model.clip_decoder[0].__class__ is MLPDecoder
    whole = model.distill_position((8, 8, 8), None, 2)  # the reference grid: the parameter itself
    assert whole.shape == (2, 513, 128) and torch.equal(whole[0], model.clip_pos_embed[0])
    kept = torch.tensor([[0, 5, 70], [1, 2, 3]])
    small = model.distill_position((2, 6, 6), kept, 2)
    full = model.distill_position((2, 6, 6), None, 2)
    assert small.shape == (2, 4, 128) and torch.equal(small[1, 1:], full[1, 2:5]) and torch.equal(small[:, 0], full[:, 0])
    linear = build_model("fluxvit_tiny", num_classes=0, distill=DistillHeads(1, 16, 8, decoder="linear"))
    assert sorted(linear.clip_decoder[0].state_dict()) == ["head.bias", "head.weight", "norm.bias", "norm.weight"]


def test_a_distillation_step_trains_the_position_embedding_and_decoders():
    torch.manual_seed(0)
    teacher = build_model("internvideo2_tiny", num_classes=0)
    student = build_model("fluxvit_tiny", num_classes=0, distill=DistillHeads(2, teacher.size.embed_dim, teacher.size.clip_dim))
    spec = FlexibleSpec((4,), (56,), 32, 64, 14)
    run = ResolvedRun(
        id="umt", stage="umt", model="fluxvit_tiny", model_options={}, parent=None, datasets=("d",),
        input=RunInput("flexible", spec), optim=OptimSettings(lr=1e-3, weight_decay=0.05), batch_size=2,
        budgets=(48, 32), teacher_budget=48, distill_layers=2, heads=(0, 1), num_heads=3, teacher_layer_interval=1.0,
    )  # fmt: skip
    objective = Distillation(run, teacher)
    assert objective.teacher_layers == [3, 2]
    loss, parts = objective(student, {"video": torch.randn(2, 3, 4, 56, 56)})
    loss.backward()
    assert set(parts) == {"layers_48", "pooled_48", "layers_32", "pooled_32"}
    assert 0 < float(loss.detach()) < 8  # two 2 - 2cos terms per budget
    assert student.clip_pos_embed.grad is not None and student.clip_pos_embed.grad.abs().sum() > 0
    assert all(p.grad is not None for p in student.clip_decoder.parameters())
    assert all(p.grad is None for p in teacher.parameters())
