"""Real media files for tests: small h264 mp4 clips from the synthetic renderer, broken variants, and toy datasets
indexed over them."""

from pathlib import Path

import numpy as np

from flux.data import scenes
from flux.data.index import run as index


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


def remux(source: Path, path: Path) -> Path:
    """`source`'s video packets in the container `path`'s extension names (.mkv, .ts, .flv, .mov), not re-encoded."""
    import av

    with av.open(str(source)) as inputs, av.open(str(path), "w") as outputs:
        stream = outputs.add_stream_from_template(inputs.streams.video[0])
        for packet in inputs.demux(inputs.streams.video[0]):
            if packet.dts is not None:  # not the empty packet that ends the stream
                packet.stream = stream
                outputs.mux(packet)
    return path


def write_corrupt(source: Path, path: Path, fraction: float = 0.5) -> Path:
    """`source` (long: 240 frames at 12 fps are 10 keyframe intervals of write_mp4) with 400 bytes of its media
    data zeroed at `fraction` of the way in. Half way: the first and the last frame decode from keyframes far
    before and after it (an index probe passes the file), the middle fails. Near the end: the last frame fails."""
    data = bytearray(Path(source).read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov")
    if not 0 < start < end:
        raise ValueError(f"{source}: expected the media data before the movie header (ffmpeg's default layout)")
    at = start + int((end - start - 400) * fraction)
    data[at : at + 400] = bytes(400)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(bytes(data))
    return Path(path)


def write_image(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    scenes.write_jpeg(scenes.render_image(scenes.sample_appearance(rng), 80, 60, seed), path)
    return path


def index_dataset(data: Path, name: str, entry: dict, annotation_text: dict[str, str]) -> Path:
    """Write `annotation_text` (relative path -> text) into data/raw/<name>/ and index it; the manifest's path."""
    root = data / "raw" / name
    for relative, text in annotation_text.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    manifest = data / "manifests" / f"{name}.parquet"
    index(
        {
            "dataset": name,
            "entry": entry,
            "dataset_dir": str(root),
            "data_dir": str(data),
            "media_roots": {name: str(root / "media")},
            "probe_cache": str(data / "cache" / f"{name}.jsonl"),
            "reuse_probes": [],
            "manifest": str(manifest),
            "report": str(manifest.with_suffix(".json")),
        }
    )
    return manifest
