"""Decode throughput on synthetic h264 clips: decord vs PyAV on the same frame indices, side by side.

    python benchmarks/decode.py                   # 40 generated videos in a temp dir
    python benchmarks/decode.py --media data/raw/synth_k400/media --repeats 5

For 8- and 16-frame clips (TSN centre indices, as evaluation samples them) it measures clips/s for
  decord   VideoReader(path) + get_batch(indices)            (what flux's reader does)
  pyav     open + decode sequentially up to the last index   (keeping the chosen frames)
and, as the ceiling, the raw sequential decode rate of whole files (all frames, frames/s) with both.
Methods alternate within each repeat, so machine noise hits them alike; the ratios are the result.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import decord
import numpy as np

from flux.data import scenes
from flux.data.sampling import tsn_center_indices


def generate(directory: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        spec = scenes.SceneSpec(
            (scenes.MOTIONS[index % len(scenes.MOTIONS)],),
            scenes.sample_appearance(rng),
            scenes.sample_video_format(rng),
            seed=index,
        )
        path = directory / f"clip{index:03d}.mp4"
        scenes.write_mp4(scenes.render_video(spec), spec.video.fps, path)
        paths.append(path)
    return paths


def frame_count(path: Path) -> int:
    return len(decord.VideoReader(str(path), num_threads=1))


def decord_clip(path: Path, indices: list[int]) -> np.ndarray:
    reader = decord.VideoReader(str(path), num_threads=1, ctx=decord.cpu(0))
    return reader.get_batch(indices).asnumpy()


def pyav_clip(path: Path, indices: list[int]) -> np.ndarray:
    wanted = {}
    for position, index in enumerate(indices):
        wanted.setdefault(index, []).append(position)
    frames: list[np.ndarray | None] = [None] * len(indices)
    last = max(indices)
    with av.open(str(path)) as container:
        for number, frame in enumerate(container.decode(video=0)):
            if number in wanted:
                array = frame.to_ndarray(format="rgb24")
                for position in wanted[number]:
                    frames[position] = array
            if number >= last:
                break
    return np.stack(frames)


def decord_all(path: Path) -> int:
    reader = decord.VideoReader(str(path), num_threads=1, ctx=decord.cpu(0))
    count = len(reader)
    for index in range(count):
        reader[index].asnumpy()
    return count


def pyav_all(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for frame in container.decode(video=0) if frame.to_ndarray(format="rgb24") is not None)


def timed(function, items) -> float:
    started = time.perf_counter()
    for item in items:
        function(*item)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, help="folder of mp4 files (default: generate synthetic ones)")
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        if arguments.media:
            paths = sorted(arguments.media.rglob("*.mp4"))[: arguments.videos]
        else:
            paths = generate(Path(scratch), arguments.videos, arguments.seed)
        lengths = {path: frame_count(path) for path in paths}
        for path in paths:  # both decoders must return the same frames for the comparison to mean anything
            indices = tsn_center_indices(lengths[path], 8)
            assert np.array_equal(decord_clip(path, indices), pyav_clip(path, indices)), f"decoders disagree on {path}"
        total_frames = sum(lengths.values())
        print(f"{len(paths)} videos, {total_frames} frames, mean {total_frames / len(paths):.0f} frames/video")

        rates: dict[str, list[float]] = {}
        for _ in range(arguments.repeats):
            for clip_frames in (8, 16):
                work = [(path, tsn_center_indices(lengths[path], clip_frames)) for path in paths]
                for name, function in (("decord", decord_clip), ("pyav", pyav_clip)):
                    rates.setdefault(f"{name} {clip_frames}", []).append(len(work) / timed(function, work))
            for name, function in (("decord", decord_all), ("pyav", pyav_all)):
                rates.setdefault(f"{name} all", []).append(total_frames / timed(function, [(p,) for p in paths]))

        median = {key: statistics.median(values) for key, values in rates.items()}
        print(f"{'':28s}{'decord':>12s}{'pyav':>12s}{'decord/pyav':>14s}")
        for clip_frames in (8, 16):
            d, p = median[f"decord {clip_frames}"], median[f"pyav {clip_frames}"]
            print(f"{f'{clip_frames}-frame clips/s':28s}{d:12.1f}{p:12.1f}{d / p:14.2f}")
        d, p = median["decord all"], median["pyav all"]
        print(f"{'all frames, frames/s':28s}{d:12.0f}{p:12.0f}{d / p:14.2f}")
        for clip_frames in (8, 16):
            ceiling = median["decord all"] / (total_frames / len(paths))
            ratio = median[f"decord {clip_frames}"] / ceiling
            print(f"decord {clip_frames}-frame clips/s vs whole-file decode ({ceiling:.1f} videos/s): {ratio:.2f}x")


if __name__ == "__main__":
    main()
