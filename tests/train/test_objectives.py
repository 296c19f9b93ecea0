"""Flux-UMT as InternVideo2 distils: teacher layers, MLP decoders, the student's distillation position embedding;
and what every objective leaves on the device."""

import contextlib
import dataclasses

import pytest
import torch

from flux.data.sampling import FlexibleSpec
from flux.models.fluxvit import DistillHeads, build_model
from flux.models.heads import MLPDecoder
from flux.models.text import build_text_encoder
from flux.train.objectives import Classification, Distillation, VideoTextContrastive
from flux.train.optim import grad_norms
from flux.train.runs import OptimSettings, ResolvedRun, RunInput, teacher_layers
from flux.train.trainer import host_scalars


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


HOST_READS = ("__float__", "__int__", "__bool__", "item", "tolist")


@contextlib.contextmanager
def no_host_reads(monkeypatch, allowed: int = 0):
    """Every way Python code reads a tensor's value on the host raises (on a GPU each would wait for the device),
    but for `allowed` calls of `tolist` (one transfer of many values); yields the list of those calls."""
    transfers = []

    def refuse(name):
        def read(*args, **kwargs):
            raise AssertionError(f"Tensor.{name} read a value on the host")

        return read

    original = torch.Tensor.tolist

    def tolist(tensor):
        transfers.append(tensor.shape)
        if len(transfers) > allowed:
            raise AssertionError("Tensor.tolist read values on the host once more than allowed")
        return original(tensor)

    with monkeypatch.context() as patch:
        for name in HOST_READS:
            patch.setattr(torch.Tensor, name, refuse(name))
        patch.setattr(torch.Tensor, "tolist", tolist)
        yield transfers


def _run(stage: str, **fields) -> ResolvedRun:
    spec = FlexibleSpec((4,), (56,), 32, 64, 14)
    base = ResolvedRun(
        id=stage, stage=stage, model="fluxvit_tiny", model_options={}, parent=None, datasets=("d",),
        input=RunInput("flexible", spec), optim=OptimSettings(lr=1e-3, weight_decay=0.05), batch_size=2,
        num_heads=3, teacher_layer_interval=1.0,
    )  # fmt: skip
    return dataclasses.replace(base, **fields)


def _objectives():
    teacher = build_model("internvideo2_tiny", num_classes=0)
    distilling = build_model(
        "fluxvit_tiny", num_classes=0, distill=DistillHeads(2, teacher.size.embed_dim, teacher.size.clip_dim)
    )
    umt = _run("umt", budgets=(48, 32), teacher_budget=48, distill_layers=2, heads=(0, 1))
    text = build_text_encoder(
        "tiny", corpus=["a red circle moves", "a blue square stays"], embed_dim=32, num_heads=2, depth=1, seed=0
    )
    multi = _run(
        "finetune", method="multi", align=True, budgets=(48, 32, 16), heads=(0, 1, 2),
        augment={"mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1},
    )  # fmt: skip
    video, labels = torch.randn(2, 3, 4, 56, 56), torch.tensor([1, 3])
    return {
        "flux_multi": (Classification(multi, 5), build_model("fluxvit_tiny", num_classes=5), {"video": video, "label": labels}),
        "flux_umt": (Distillation(umt, teacher), distilling, {"video": video}),
        "flux_clip": (
            VideoTextContrastive(_run("clip", budgets=(32,), heads=(1,)), text, train_text=True),
            build_model("fluxvit_tiny", num_classes=0, text_dim=32),
            {"video": video, "text": ["a red circle moves", "a blue square stays"]},
        ),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["flux_multi", "flux_umt", "flux_clip"])
def test_objectives_and_gradient_norms_read_nothing_back_from_the_device(monkeypatch, name):
    """The trainer reads a step's loss, components and gradient norms in one transfer (flux.train.trainer.host_scalars
    and grad_norms' stack): the objectives themselves keep everything on the device."""
    torch.manual_seed(0)
    objective, model, batch = _objectives()[name]
    objective.setup(model)
    with no_host_reads(monkeypatch):
        loss, components = objective(model, batch)
        loss.backward()
    assert components and all(
        torch.is_tensor(value) and value.dim() == 0 and not value.requires_grad for value in components.values()
    )
    assert torch.isfinite(loss)
    with no_host_reads(monkeypatch, allowed=1) as transfers:
        norms = grad_norms(model, {"blocks": ("blocks.",)})
    assert len(transfers) == 1
    squares = [float(p.grad.float().pow(2).sum()) for _, p in model.named_parameters() if p.grad is not None]
    assert norms["total"] == pytest.approx(sum(squares) ** 0.5, rel=1e-12)


def test_host_scalars_reads_a_steps_values_in_one_transfer_and_keeps_their_order(monkeypatch):
    values = {"loss": torch.tensor(1.5), "ce_48": torch.tensor(0.25, dtype=torch.bfloat16), "align_0": torch.tensor([0.125])}
    with no_host_reads(monkeypatch, allowed=1) as transfers:
        read = host_scalars(values)
    assert list(read.items()) == [("loss", 1.5), ("ce_48", 0.25), ("align_0", 0.125)] and len(transfers) == 1
