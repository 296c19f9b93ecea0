"""DeepSpeed backend: the released FluxViT code trains with DeepSpeed (AdamW, bf16, ZeRO-1; paper §2.5).

It mirrors `flux.train.trainer.TorchBackend` (backward, step, state_dict, load_state_dict), so the trainer's
loop, schedule and resume logic are the same for both backends:

- The trainer builds its own timm AdamW and steps its own timm scheduler; DeepSpeed wraps that optimiser
  (the ZeRO wrapper shares its `param_groups`, so the scheduler's lr reaches the update) and the config
  carries no optimizer/scheduler section. Gradient clipping is DeepSpeed's, from the config.
- The trainer calls the model's methods directly, not `engine(...)`. That is fine for ZeRO stages 0-2:
  parameters stay whole on every rank and gradients are reduced by hooks on the parameters. ZeRO-3 keeps
  only a shard of each parameter and gathers it in hooks around the forward of the submodule owning it,
  so parameters read outside such a forward (position embeddings, CLS token, logit scale) and the
  trainer's `modules.state_dict()` checkpoints would see shards; stage 3 is refused.
- The resume state is a plain dict inside the trainer's own atomic state file, not DeepSpeed's checkpoint
  directory. With ZeRO >= 1 each rank owns one partition of the optimiser state, so with several processes
  `state_dict()` gathers the partitions to rank 0 and is a collective: every rank must call it (see
  `collective_state_dict`). Resuming needs the same number of processes (the samplers need it too).
- With bf16 (GPU only) DeepSpeed casts the modules to bf16 and keeps fp32 master weights in its optimiser
  state, which `state_dict()` carries, so a resume restores them exactly.
- On CPU DeepSpeed would JIT-compile its shared-memory all-reduce op (30-70 s) at the first process-group
  set-up; it only speeds up multi-process CPU all-reduce, so it is disabled and gloo does the work.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from flux.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where it is used, as in flux.train.optim
    import torch
    from torch import nn

    from flux.train.distributed import Topology
    from flux.train.runs import ResolvedRun
from flux.train.spec import TrainSpec

INSTALL_HINT = (
    "the 'deepspeed' backend needs DeepSpeed: pip install -e '.[cluster]' "
    "(on a machine without CUDA: DS_BUILD_OPS=0 pip install -e '.[cluster]', which builds no CUDA ops)"
)
SUPPORTED_STAGES = (0, 1, 2)
SHM_OP = "deepspeed_shm_comm"  # DeepSpeed's CPU shared-memory communication op (JIT-compiled on first use)
STATE_FORMAT = "deepspeed"


def _zero_stage(spec: TrainSpec) -> int:
    stage = spec.zero_stage
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage <= 3:
        raise ConfigError(f"training.zero_stage must be an integer 0-3, got {stage!r}")
    return stage


def deepspeed_config(run: ResolvedRun, spec: TrainSpec, topology: Topology, device_type: str) -> dict:
    """The DeepSpeed JSON config of a run (pure: no DeepSpeed import).

    `run.batch_size` is the global batch (the paper's tables), so each process takes its share. bf16 only
    on CUDA, as the trainer's autocast. No optimizer/scheduler sections: the trainer's own are used.
    """
    clip = run.optim.clip_grad
    return {
        "train_micro_batch_size_per_gpu": max(1, run.batch_size // topology.world_size),
        "gradient_accumulation_steps": 1,
        "zero_optimization": {"stage": _zero_stage(spec)},
        "bf16": {"enabled": device_type == "cuda" and spec.precision in ("auto", "bf16")},
        "gradient_clipping": float(clip) if clip else 0.0,
        "steps_per_print": 2**31 - 1,  # the trainer logs; DeepSpeed's own step prints would only be noise
        "wall_clock_breakdown": False,
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def single_process_env(topology: Topology, environ: Any = None) -> dict[str, str]:
    """Set the variables DeepSpeed's process-group set-up reads (else it looks for MPI and fails on the
    missing mpi4py), only where they are unset. Returns what was set."""
    environ = os.environ if environ is None else environ
    wanted = {"RANK": str(topology.rank), "LOCAL_RANK": str(topology.local_rank), "WORLD_SIZE": str(topology.world_size)}
    missing_master = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in environ]
    if missing_master:
        if topology.world_size > 1:  # every rank must agree on the rendezvous: only the launcher can set it
            raise ConfigError(f"distributed DeepSpeed run without {missing_master}: launch with torchrun or export them")
        wanted.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    added = {name: value for name, value in wanted.items() if name not in environ}
    environ.update(added)
    return added


def _import_deepspeed():
    try:
        import deepspeed
    except ImportError as error:
        raise ConfigError(f"{INSTALL_HINT} ({error})") from error
    return deepspeed


def _disable_shm_op(deepspeed) -> None:
    """Mark the shared-memory op incompatible: `deepspeed.comm` then skips its JIT build (30-70 s on CPU).
    Reading `__compatible_ops__` runs DeepSpeed's op probe once (a fraction of a second); the comm set-up
    reads the same dict."""
    import deepspeed.ops  # noqa: F401  (the attribute lives on the submodule)

    deepspeed.ops.__compatible_ops__[SHM_OP] = False


def _to_cpu(value: Any) -> Any:
    """A copy of nested optimiser state with tensors on the CPU: safe to pickle across ranks and detached
    from the live buffers that later steps overwrite."""
    import torch

    if torch.is_tensor(value):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_cpu(item) for item in value]
    if isinstance(value, tuple):
        items = [_to_cpu(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


class DeepSpeedBackend:
    """DeepSpeed engine around the trainer's modules and optimiser; same interface as TorchBackend."""

    def __init__(
        self, modules: nn.Module, optimizer: torch.optim.Optimizer, run: ResolvedRun, spec: TrainSpec, topology: Topology
    ) -> None:
        stage = _zero_stage(spec)
        if stage not in SUPPORTED_STAGES:
            raise ConfigError(
                f"training.zero_stage {stage}: ZeRO-3 shards every parameter and gathers it only inside its "
                "submodule's forward, but the trainer reads parameters outside those (position embeddings, "
                "logit scale) and saves modules.state_dict(); use stage 0, 1 or 2"
            )
        deepspeed = _import_deepspeed()
        from deepspeed.accelerator import get_accelerator

        single_process_env(topology)
        _disable_shm_op(deepspeed)
        device_type = "cuda" if get_accelerator().device_name() == "cuda" else "cpu"
        self.config = deepspeed_config(run, spec, topology, device_type)
        self.modules, self.client_optimizer, self.topology, self.stage = modules, optimizer, topology, stage
        self.engine, self.optimizer, _, _ = deepspeed.initialize(model=modules, optimizer=optimizer, config=self.config)
        self.partitioned = self._is_partitioned(self.optimizer)

    @staticmethod
    def _is_partitioned(optimizer: Any) -> bool:
        """ZeRO and DeepSpeed's bf16 optimiser keep per-rank (partitioned) state and load a list of them."""
        from deepspeed.runtime.bf16_optimizer import BF16_Optimizer
        from deepspeed.runtime.zero.stage_1_and_2 import DeepSpeedZeroOptimizer

        return isinstance(optimizer, (DeepSpeedZeroOptimizer, BF16_Optimizer))

    @property
    def collective_state_dict(self) -> bool:
        """True when `state_dict()` gathers partitions across ranks, i.e. every rank must call it."""
        return self.partitioned and self.topology.world_size > 1

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        self.engine.step()  # clips (config), updates, zeroes the gradients

    def full_grad(self, parameter: torch.Tensor) -> torch.Tensor | None:
        """The parameter's whole gradient between backward() and step(). ZeRO keeps it in its own buffers
        (`parameter.grad` is None), so gradient-norm logging must read it here; with several processes this
        is a collective (every rank must ask for the same parameters)."""
        from deepspeed.utils import safe_get_full_grad

        return safe_get_full_grad(parameter)

    def state_dict(self, local: bool = False) -> dict:
        """The optimiser state (with fp32 master weights where DeepSpeed keeps them) and the engine's step
        counters, as a plain dict with CPU tensors. Partitioned state from several ranks is gathered to rank
        0 (None elsewhere), a collective; `local=True` keeps only this rank's partition, without any
        communication, for a state saved by one rank alone (e.g. for inspection after a non-finite loss),
        which cannot be resumed with several processes."""
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "zero_stage": self.stage,
            "world_size": self.topology.world_size,
            "partitioned": self.partitioned,
            "engine": {
                "global_steps": self.engine.global_steps,
                "global_samples": self.engine.global_samples,
                "micro_steps": self.engine.micro_steps,
                "skipped_steps": self.engine.skipped_steps,
            },
        }
        own = _to_cpu(self.optimizer.state_dict())
        if not self.partitioned:
            state["optimizer"] = own
        elif self.topology.world_size == 1:
            state["partitions"] = [own]
        elif local:
            state.update(partitions=None, local_partition=own, rank=self.topology.rank)
        else:
            import torch.distributed as dist

            gathered: list[Any] | None = [None] * self.topology.world_size if self.topology.is_main else None
            dist.gather_object(own, gathered, dst=0)
            state["partitions"] = gathered
        return state

    def load_state_dict(self, state: dict) -> None:
        if not self.partitioned:
            if "optimizer" not in state:
                raise ConfigError(
                    f"the saved state holds ZeRO partitions (stage {state.get('zero_stage')}); resume with the same "
                    f"zero_stage and precision, not stage {self.stage} here"
                )
            self.optimizer.load_state_dict(state["optimizer"])  # also a TorchBackend state (same torch AdamW)
        else:
            partitions = state.get("partitions")
            if "local_partition" in state:
                raise ConfigError(
                    f"the saved state holds rank {state.get('rank')}'s ZeRO partition only (saved by one rank, for "
                    "inspection); it cannot resume a multi-process run"
                )
            if partitions is None:
                raise ConfigError(
                    f"the saved state holds a whole optimiser state, not ZeRO partitions; resume with the backend, "
                    f"zero_stage and precision it was saved with (now: deepspeed, stage {self.stage})"
                )
            if len(partitions) != self.topology.world_size:
                raise ConfigError(
                    f"the saved ZeRO state has {len(partitions)} partitions but this run has {self.topology.world_size} "
                    "processes; resume with the same number of processes"
                )
            # fp32 master weights from the state itself, not rebuilt from (possibly bf16) module weights
            self.optimizer.load_state_dict(partitions, load_from_fp32_weights=True)
        for name, value in state.get("engine", {}).items():
            setattr(self.engine, name, value)
