"""What the thorough index costs: probing every frame (`indexing.thorough: true`) against the default probe (first
and last frame), on the same files, side by side.

    python benchmarks/index_probe.py                        # 12 generated videos in a temp dir
    python benchmarks/index_probe.py --media data/raw/synth_k400/media --repeats 3

The generated videos are those of benchmarks/decode.py (the synthetic generator's formats: 1-10 s, 160-320 px).
Each repeat probes every file both ways, alternating, so machine noise hits them alike. Prints per mode the
median seconds per file and per 1000 frames, and the ratio thorough / default: the factor by which a thorough
`flux index` (one process per core, like the default) outlasts the default one on such files.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from decode import frame_count, generate  # benchmarks/ is run as a script folder

from flux.data.video import probe_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, help="a folder of videos (default: generate some)")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        paths = sorted(args.media.rglob("*.mp4"))[: args.count] if args.media else generate(Path(temporary), args.count, 0)
        frames = sum(frame_count(path) for path in paths)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for thorough in (False, True):
                started = time.perf_counter()
                for path in paths:
                    probe_video(path, thorough=thorough)
                times[thorough].append(time.perf_counter() - started)
    print(f"{len(paths)} files, {frames} frames, {args.repeats} repeats")
    for thorough, label in ((False, "default (first + last frame)"), (True, "thorough (every frame)")):
        seconds = statistics.median(times[thorough])
        print(f"{label:<30} {seconds / len(paths) * 1000:8.1f} ms/file  {seconds / frames * 1e6:8.1f} ms/1000 frames")
    ratios = [slow / fast for fast, slow in zip(times[False], times[True])]
    print(f"thorough / default: {statistics.median(ratios):.1f}x")


if __name__ == "__main__":
    main()
