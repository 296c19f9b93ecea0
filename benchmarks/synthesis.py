"""Synthetic video generation speed: rendering frames and encoding them to h264, side by side.

    python benchmarks/synthesis.py                 # 100 frames at 160x120, 5 repeats
    python benchmarks/synthesis.py --frames 200 --width 320 --height 240

The embedded default generates a few hundred such clips before anything trains, so this is the cost a new user
waits for first. Render and encode alternate within each repeat (machine noise hits both alike); the result is
their best times and the encode / render ratio. (A wall-clock bound on this lived in the unit tests, where a
busy machine failed it; it belongs here.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from flux.data import scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    appearance = scenes.sample_appearance(np.random.default_rng(16))
    video = scenes.VideoFormat(arguments.width, arguments.height, arguments.fps, arguments.frames)
    spec = scenes.SceneSpec(motions=("moving right",), appearance=appearance, video=video, seed=0)
    render, encode = [], []
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "clip.mp4"
        scenes.write_mp4(scenes.render_video(spec), arguments.fps, path)  # warm-up: codec and caches
        for _ in range(arguments.repeats):
            started = time.perf_counter()
            frames = scenes.render_video(spec)
            render.append(time.perf_counter() - started)
            started = time.perf_counter()
            scenes.write_mp4(frames, arguments.fps, path)
            encode.append(time.perf_counter() - started)
    best_render, best_encode = min(render), min(encode)
    size = f"{arguments.frames} frames at {arguments.width}x{arguments.height}"
    print(
        f"{size}: render {best_render * 1000:.1f} ms ({arguments.frames / best_render:.0f} frames/s), "
        f"encode {best_encode * 1000:.1f} ms ({arguments.frames / best_encode:.0f} frames/s), "
        f"both {(best_render + best_encode) * 1000:.1f} ms; encode / render = {best_encode / best_render:.2f}"
    )


if __name__ == "__main__":
    main()
