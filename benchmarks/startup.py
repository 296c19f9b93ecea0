"""Per-job start-up: how long a `flux` job takes to reach its first line of real work, against `import torch`.

    python benchmarks/startup.py [--repeats 5]

For every verb of flux.verbs, side by side in one run (interleaved, median of the repeats): `python -m flux
<verb> --help`; a minimal cold job: a fresh interpreter that imports the function the verb runs (what every job
of that verb pays before it reads its spec; for `train`, also timm's optimiser and scheduler, which it imports
before its first step, and torch._dynamo, which torch's optimisers import at it); and a minimal forked job:
`python -m flux <verb> --help` sent to a fork server (flux.forkserver, as the embedded default runs its jobs),
i.e. the client's start, the fork and the argument parsing. The baseline is `python -c "import torch"`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flux import forkserver
from flux.verbs import VERBS

# imported inside a verb's function before its first unit of work (lazy imports the module import does not count)
LAZY = {"train": "import timm.optim, timm.scheduler, torch._dynamo"}


def seconds(command: list[str], environment: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=environment)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    python = sys.executable
    server = forkserver.start(Path(tempfile.mkdtemp()) / "forkserver.log")
    forked = {**os.environ, forkserver.SOCKET_VARIABLE: server.socket}
    commands = {"import torch": ([python, "-c", "import torch"], None)}
    for entry in VERBS.values():
        module, _, function = entry.run.partition(":")
        lazy = f"; {LAZY[entry.name]}" if entry.name in LAZY else ""
        cold_job = [python, "-c", f"from {module} import {function}{lazy}"]
        if not entry.is_job:
            commands[f"{entry.name} job"] = (cold_job, None)
            continue
        help_command = [python, "-m", "flux", entry.name, "--help"]
        commands[f"{entry.name} --help"] = (help_command, None)
        commands[f"{entry.name} job"] = (cold_job, None)
        commands[f"{entry.name} job, forked"] = (help_command, forked)
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for _ in range(repeats):
            for name, (command, environment) in commands.items():
                times[name].append(seconds(command, environment))
    finally:
        server.stop()
    torch_s = statistics.median(times["import torch"])
    print(f"{'':24s} {'median s':>9s} {'vs torch':>9s} {'- torch s':>9s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} {median:9.2f} {median / torch_s:8.2f}x {median - torch_s:9.2f}")


if __name__ == "__main__":
    main()
