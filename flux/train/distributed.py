"""Process topology from torchrun or SLURM environment variables, and process-group set-up.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; `srun` without torchrun sets SLURM_PROCID / SLURM_NTASKS /
SLURM_LOCALID (the official FluxViT scripts launch that way). torchrun's variables win when both exist,
because under `srun torchrun` the SLURM ones describe the launcher, not the workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from flux.errors import ConfigError


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    source: str = "single"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def topology_from_env(environ: Mapping[str, str] | None = None) -> Topology:
    environ = os.environ if environ is None else environ
    for names, source in (
        (("RANK", "WORLD_SIZE", "LOCAL_RANK"), "torchrun"),
        (("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"), "slurm"),
    ):
        if all(name in environ for name in names):
            try:
                rank, world, local = (int(environ[name]) for name in names)
            except ValueError:
                raise ConfigError(f"{'/'.join(names)} must be integers, got {[environ[n] for n in names]}") from None
            if not 0 <= rank < world or local < 0:
                raise ConfigError(f"inconsistent {source} topology: rank {rank}, world size {world}, local rank {local}")
            return Topology(rank, world, local, source)
    return Topology()


def device_for(topology: Topology) -> torch.device:
    """cuda:<local rank> when GPUs are visible, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", topology.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def process_group_backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def init_process_group(topology: Topology, device: torch.device) -> None:
    """nccl on GPUs, gloo on CPU; MASTER_ADDR/PORT come from torchrun (or the SLURM launcher script)."""
    if not topology.distributed or torch.distributed.is_initialized():
        return
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise ConfigError(f"distributed run without {missing}: launch with torchrun, or export them in the SLURM script")
    backend = process_group_backend(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group(backend=backend, rank=topology.rank, world_size=topology.world_size)
