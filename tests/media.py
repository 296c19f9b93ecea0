"""Real media files for tests: small h264 mp4 clips from the synthetic renderer, and broken variants."""

from pathlib import Path

import numpy as np

from flux.data import scenes


def write_clip(
    path: Path, motion: str = "moving right", num_frames: int = 24, fps: int = 12, size=(64, 48), seed: int = 0
) -> Path:
    rng = np.random.default_rng(seed)
    spec = scenes.SceneSpec((motion,), scenes.sample_appearance(rng), scenes.VideoFormat(size[0], size[1], fps, num_frames), seed)
    scenes.write_mp4(scenes.render_video(spec), fps, path)
    return path


def write_truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def write_image(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    scenes.write_jpeg(scenes.render_image(scenes.sample_appearance(rng), 80, 60, seed), path)
    return path
