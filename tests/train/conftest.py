"""DeepSpeed in the test process: installed-or-skip (a failure in CI) and a clean process group around each use."""

import os

import pytest
import torch

ENV_NAMES = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


def require_deepspeed():
    """The deepspeed module; missing is a skip locally but a failure in CI, which installs it."""
    try:
        import deepspeed
    except ImportError as error:
        message = f"deepspeed is not installed ({error}): DS_BUILD_OPS=0 pip install deepspeed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return deepspeed


def forget_deepspeed_groups() -> None:
    """Destroy the process group DeepSpeed created and the clones it caches (its world group), so a later
    engine in this process builds them afresh instead of broadcasting over a destroyed group."""
    import deepspeed.comm.comm as ds_comm
    from deepspeed.utils import groups

    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    ds_comm.cdb = None
    groups._WORLD_GROUP = None
    groups._DATA_PARALLEL_GROUP = None


@pytest.fixture
def deepspeed_cpu():
    """DeepSpeed in this process: the single-process variables are left for the backend to set, and both they
    and the process group it creates are removed afterwards, so later tests see a plain process."""
    require_deepspeed()
    saved = {name: os.environ.pop(name) for name in ENV_NAMES if name in os.environ}
    yield
    forget_deepspeed_groups()
    for name in ENV_NAMES:
        os.environ.pop(name, None)
    os.environ.update(saved)
