"""The DeepSpeed backend: its config (pure), and real engines on the CPU with ZeRO stages 0-2.

Real-engine tests need DeepSpeed (in the `test` extra; the sdist builds no ops): missing, they skip locally but
fail in CI, as tests/paths.py does for the fixtures.
"""

from __future__ import annotations

import io
import os
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from flux.errors import ConfigError
from flux.train.deepspeed_backend import DeepSpeedBackend, deepspeed_config, single_process_env
from flux.train.distributed import Topology
from flux.train.optim import OptimSettings, build_optimizer
from tests.train.conftest import require_deepspeed


def make_run(batch_size: int = 32, clip_grad: float | None = 5.0, lr: float = 0.05) -> SimpleNamespace:
    """The two fields of a ResolvedRun the backend reads."""
    return SimpleNamespace(batch_size=batch_size, optim=OptimSettings(lr=lr, weight_decay=0.05, clip_grad=clip_grad))


def make_job(stage: int = 1, precision: str = "auto") -> SimpleNamespace:
    """The fields of a TrainSpec the backend reads."""
    return SimpleNamespace(backend="deepspeed", zero_stage=stage, precision=precision)


# ------------------------------------------------------------------------------------------- config (pure)
def test_micro_batch_is_the_global_batch_split_over_the_processes():
    config = deepspeed_config(make_run(batch_size=32), make_job(), Topology(rank=1, world_size=4, local_rank=1), "cpu")
    assert config["train_micro_batch_size_per_gpu"] == 8
    assert config["gradient_accumulation_steps"] == 1
    tiny = deepspeed_config(make_run(batch_size=2), make_job(), Topology(rank=0, world_size=4), "cpu")
    assert tiny["train_micro_batch_size_per_gpu"] == 1  # never 0


@pytest.mark.parametrize(
    ("device", "precision", "enabled"),
    [("cuda", "auto", True), ("cuda", "bf16", True), ("cuda", "fp32", False), ("cpu", "auto", False), ("cpu", "bf16", False)],
)
def test_bf16_only_on_cuda(device, precision, enabled):
    config = deepspeed_config(make_run(), make_job(precision=precision), Topology(), device)
    assert config["bf16"] == {"enabled": enabled}


@pytest.mark.parametrize(("clip", "expected"), [(5.0, 5.0), (None, 0.0), (0.0, 0.0)])
def test_clipping_comes_from_the_run(clip, expected):
    assert deepspeed_config(make_run(clip_grad=clip), make_job(), Topology(), "cpu")["gradient_clipping"] == expected


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_stage_comes_from_the_job_and_the_trainer_owns_optimiser_and_schedule(stage):
    config = deepspeed_config(make_run(), make_job(stage), Topology(), "cpu")
    assert config["zero_optimization"] == {"stage": stage}
    assert "optimizer" not in config and "scheduler" not in config
    assert config["steps_per_print"] >= 10**9


@pytest.mark.parametrize("stage", [-1, 4, "1", True, 1.0])
def test_invalid_stage_is_a_config_error(stage):
    with pytest.raises(ConfigError, match="zero_stage"):
        deepspeed_config(make_run(), make_job(stage), Topology(), "cpu")


def test_stage_3_is_refused_before_deepspeed_is_needed():
    with pytest.raises(ConfigError, match="ZeRO-3 shards"):
        DeepSpeedBackend(nn.Linear(2, 1), None, make_run(), make_job(3), Topology())


def test_missing_deepspeed_is_a_config_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # `import deepspeed` now raises ImportError
    modules = nn.Linear(2, 1)
    with pytest.raises(ConfigError) as caught:
        DeepSpeedBackend(modules, build_optimizer(modules, make_run().optim), make_run(), make_job(1), Topology())
    assert "pip install -e '.[cluster]'" in str(caught.value) and "DS_BUILD_OPS=0" in str(caught.value)


def test_single_process_env_fills_only_what_is_missing():
    environ = {"MASTER_PORT": "1234"}
    added = single_process_env(Topology(), environ)
    assert environ == {"MASTER_PORT": "1234", "MASTER_ADDR": "127.0.0.1", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    assert "MASTER_PORT" not in added
    fresh: dict[str, str] = {}
    single_process_env(Topology(), fresh)
    assert 0 < int(fresh["MASTER_PORT"]) < 65536
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        single_process_env(Topology(rank=0, world_size=2), {"RANK": "0"})


# ------------------------------------------------------------------------------------------- real engines (CPU)
def tiny_modules(seed: int) -> nn.ModuleDict:
    """Model plus an unused trainable part, as the trainer's ModuleDict (unused heads, Flux-Multi)."""
    torch.manual_seed(seed)
    return nn.ModuleDict({"model": nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)), "extra": nn.Linear(8, 3)})


def tiny_batches(count: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(6, 1, generator=generator)
    batches = []
    for _ in range(count):
        x = torch.randn(8, 6, generator=generator)
        batches.append((x, x @ weight))
    return batches


def make_backend(modules: nn.Module, stage: int, topology: Topology | None = None, **run_options) -> DeepSpeedBackend:
    run = make_run(**run_options)
    return DeepSpeedBackend(modules, build_optimizer(modules, run.optim), run, make_job(stage), topology or Topology())


def train(backend: DeepSpeedBackend, modules: nn.ModuleDict, batches) -> list[float]:
    losses = []
    for x, y in batches:
        loss = nn.functional.mse_loss(modules["model"](x), y)  # the model called directly, as the trainer does
        backend.backward(loss)
        backend.step()
        losses.append(float(loss.detach()))
    return losses


def saved(modules: nn.Module, backend: DeepSpeedBackend) -> dict:
    """Through torch.save/torch.load, as the trainer's state file."""
    buffer = io.BytesIO()
    torch.save({"modules": modules.state_dict(), "backend": backend.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=False)


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_training_lowers_the_loss_and_resume_continues_identically(deepspeed_cpu, stage):
    batches = tiny_batches(8)
    modules = tiny_modules(seed=0)
    backend = make_backend(modules, stage)
    assert backend.partitioned == (stage > 0)
    losses = train(backend, modules, batches[:5])
    assert losses[-1] < 0.7 * losses[0], losses
    state = saved(modules, backend)
    assert state["backend"]["format"] == "deepspeed" and state["backend"]["zero_stage"] == stage
    train(backend, modules, batches[5:])

    resumed_modules = tiny_modules(seed=1)  # other initial weights: everything must come from the state
    resumed = make_backend(resumed_modules, stage)
    resumed_modules.load_state_dict(state["modules"])
    resumed.load_state_dict(state["backend"])
    assert resumed.engine.global_steps == 5
    train(resumed, resumed_modules, batches[5:])
    for (name, expected), actual in zip(modules.state_dict().items(), resumed_modules.state_dict().values()):
        assert torch.equal(expected, actual), name


@pytest.mark.parametrize("stage", [0, 1])
def test_the_trainers_lr_reaches_deepspeed_and_full_grad_sees_zero_gradients(deepspeed_cpu, stage):
    modules = tiny_modules(seed=0)
    backend = make_backend(modules, stage, clip_grad=None)
    (x, y), *_ = tiny_batches(1)
    reference = tiny_modules(seed=0)["model"]
    expected = torch.autograd.grad(nn.functional.mse_loss(reference(x), y), list(reference.parameters()))
    backend.backward(nn.functional.mse_loss(modules["model"](x), y))
    for parameter, gradient in zip(modules["model"].parameters(), expected):
        torch.testing.assert_close(backend.full_grad(parameter), gradient)
    for group in backend.client_optimizer.param_groups:  # what the trainer's timm scheduler writes to
        group["lr"] = 0.0
    before = {name: value.clone() for name, value in modules.state_dict().items()}
    backend.step()
    for name, value in modules.state_dict().items():
        assert torch.equal(before[name], value), name


def test_bf16_stays_off_on_cpu(deepspeed_cpu):
    modules = tiny_modules(seed=0)
    run = make_run()
    backend = DeepSpeedBackend(modules, build_optimizer(modules, run.optim), run, make_job(1, precision="bf16"), Topology())
    assert backend.config["bf16"]["enabled"] is False
    assert all(parameter.dtype == torch.float32 for parameter in modules.parameters())


def test_a_partitioned_state_needs_the_same_layout(deepspeed_cpu):
    modules = tiny_modules(seed=0)
    backend = make_backend(modules, 1)
    state = saved(modules, backend)["backend"]
    with pytest.raises(ConfigError, match="same number of processes"):
        backend.load_state_dict({**state, "partitions": state["partitions"] * 2})
    with pytest.raises(ConfigError, match="whole optimiser state"):
        backend.load_state_dict({"optimizer": backend.client_optimizer.state_dict()})  # a TorchBackend state
    stage0 = make_backend(tiny_modules(seed=0), 0)
    with pytest.raises(ConfigError, match="ZeRO partitions"):
        stage0.load_state_dict(state)


# ------------------------------------------------------------------------------------------- two processes
def _two_process_worker(rank: int, port: int, path: str) -> None:
    """One rank of a 2-process ZeRO-1 run on gloo: train, save (a collective gather to rank 0), continue;
    a second engine resumes from the file and must reach the same weights on every rank."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    torch.set_num_threads(1)
    from flux.train.distributed import init_process_group

    topology = Topology(rank=rank, world_size=2, local_rank=rank, source="torchrun")
    init_process_group(topology, torch.device("cpu"))
    batches = tiny_batches(6, seed=10 + rank)  # each rank its own data: the gradients are averaged
    modules = tiny_modules(seed=0)
    backend = make_backend(modules, 1, topology)
    assert backend.collective_state_dict
    train(backend, modules, batches[:3])
    state = {"modules": modules.state_dict(), "backend": backend.state_dict()}  # every rank calls it
    if rank == 0:
        assert len(state["backend"]["partitions"]) == 2
        torch.save(state, path)
    else:
        assert state["backend"]["partitions"] is None
        alone = backend.state_dict(local=True)  # one rank alone: no collective, so no hang
        assert alone["rank"] == 1 and set(alone["local_partition"]["partition_count"]) == {2}
        with pytest.raises(ConfigError, match="inspection"):
            backend.load_state_dict(alone)
    torch.distributed.barrier()
    train(backend, modules, batches[3:])

    resumed_modules = tiny_modules(seed=1)
    resumed = make_backend(resumed_modules, 1, topology)
    loaded = torch.load(path, map_location="cpu", weights_only=False)
    resumed_modules.load_state_dict(loaded["modules"])
    resumed.load_state_dict(loaded["backend"])
    train(resumed, resumed_modules, batches[3:])
    for (name, expected), actual in zip(modules.state_dict().items(), resumed_modules.state_dict().values()):
        assert torch.equal(expected, actual), f"rank {rank}: {name}"
    gathered = [torch.zeros_like(modules["model"][0].weight) for _ in range(2)]
    torch.distributed.all_gather(gathered, modules["model"][0].weight.detach())
    assert torch.equal(gathered[0], gathered[1]), "ranks disagree"
    torch.distributed.destroy_process_group()


@pytest.mark.slow  # two fresh processes importing torch and DeepSpeed: ~15 s on 2 busy cores
def test_zero1_on_two_processes_gathers_and_resumes(tmp_path):
    require_deepspeed()
    from flux.train.deepspeed_backend import _free_port

    torch.multiprocessing.spawn(_two_process_worker, args=(_free_port(), str(tmp_path / "state.pt")), nprocs=2)
