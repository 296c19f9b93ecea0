"""Whether an index probe's verdict depends on the machine's load: files corrupt half way and at the end, probed
again and again while busy processes compete for the cores, beside what decord alone says of the same frames.

    python benchmarks/probe_under_load.py                  # 40 probes per file and mode, one busy process per core
    python benchmarks/probe_under_load.py --repeats 100 --busy 0

decord's decoder thread reads packets ahead of the frames asked for and raises a bad packet's error at whichever
fetch comes next, so "decord alone" (its first-and-last fetch, then every frame in the probe's chunks) varies
with thread timing (version 1 of the probe called a first-and-last failure truncated, a later one corrupt).
Prints, per file and mode, how often each verdict came out: the probe's must be one verdict.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.media writes the files the tests use

from flux.data.video import THOROUGH_CHUNK, probe_video  # noqa: E402
from tests.media import write_clip, write_corrupt  # noqa: E402


def spin() -> None:
    while True:
        pass


def decord_alone(path: Path, thorough: bool) -> str:
    import decord

    reader = decord.VideoReader(str(path), num_threads=1, ctx=decord.cpu(0))
    last = len(reader) - 1
    try:
        reader.get_batch([0, last])
    except decord.DECORDError:
        return "first-and-last fetch fails"
    try:
        for start in range(0, last + 1, THOROUGH_CHUNK) if thorough else ():
            reader.get_batch(list(range(start, min(last + 1, start + THOROUGH_CHUNK))))
    except decord.DECORDError:
        return "a later fetch fails"
    return "decodes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--busy", type=int, default=os.cpu_count(), help="busy processes beside the probes")
    args = parser.parse_args()
    busy = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
    stderr = os.dup(2)
    for process in busy:
        process.start()
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # FFmpeg logs every bad packet on stderr, from C
        with tempfile.TemporaryDirectory() as temporary:
            good = write_clip(Path(temporary) / "good.mp4", num_frames=240)
            files = {
                f"corrupt at {fraction:.0%}": write_corrupt(good, Path(temporary) / f"{fraction}.mp4", fraction)
                for fraction in (0.5, 1.0)
            }
            print(f"{args.repeats} probes per file and mode, {args.busy} busy processes, {os.cpu_count()} cores")
            for name, path in files.items():
                for thorough in (False, True):
                    probes, alone = Counter(), Counter()
                    for _ in range(args.repeats):
                        result = probe_video(path, thorough=thorough)
                        probes[(result.error_kind or "decodable", (result.error_detail or "").split(":")[0])] += 1
                        alone[decord_alone(path, thorough)] += 1
                    mode = "thorough" if thorough else "default"
                    verdicts = ", ".join(
                        f"{count}x {kind} ({detail})" if detail else f"{count}x {kind}"
                        for (kind, detail), count in probes.items()
                    )
                    print(f"{name:<16} {mode:<9} probe: {verdicts}  |  decord alone: {dict(alone)}")
    finally:
        os.dup2(stderr, 2)
        for process in busy:
            process.terminate()


if __name__ == "__main__":
    main()
