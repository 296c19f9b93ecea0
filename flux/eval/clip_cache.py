"""Decoded test views kept on disk, so that every evaluation of the same input decodes each test clip once.

The embedded default scores dozens of runs on the same validation videos at the same inputs; decoding them
(h264, resize, crop) costs more than the tiny models' forward passes. A cache entry holds every test view of one
(dataset split, frames, resolution, frame sampling, clips x crops) as uint8, exactly what `EvalTransform.view`
gives, with each view's position, clip, crop, label and decode outcome; normalising it (`EvalTransform.finish`)
gives exactly the values the dataset gives, so a cached evaluation scores what an uncached one does.

An entry's name is a digest of everything that decides its content: the manifest's bytes, each media file's
size and modification time, the input and view settings, and the source of the code that decodes, samples
and crops; a change to any of them names another entry, and a stale one is never read. Entries are written
atomically; two jobs building the same one write the same bytes. Off at paper scale (`evaluation.clip_cache`):
there a split's views take gigabytes, and each evaluation job runs on its own node.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from flux.data import datasets, sampling, transforms, video
from flux.data.datasets import VideoClassification
from flux.data.transforms import EvalTransform
from flux.io import atomic_path

logger = logging.getLogger(__name__)

DECODING_CODE = (datasets, sampling, transforms, video)  # the modules whose code decides a view's pixels


def _code_digest() -> str:
    digest = hashlib.sha256()
    for module in DECODING_CODE:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _stamp(path: Path) -> tuple[int | None, int | None]:
    """A media file's size and modification time; (None, None) for a missing one (its views are blanks)."""
    if not path.exists():
        return None, None
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class CachedViews:
    """Every test view of one input: `views` (N, T, H, W, 3) uint8 (zeros where the decode failed), and per view
    its video position, clip, crop, label (-1 without one), whether it decoded, and the failure kind."""

    views: torch.Tensor
    index: torch.Tensor
    clip: torch.Tensor
    crop: torch.Tensor
    label: torch.Tensor
    valid: torch.Tensor
    error_kind: list[str]

    def batches(self, size: int, transform: EvalTransform) -> Iterator[dict[str, Any]]:
        """Batches shaped as the DataLoader's over the dataset (the same keys and values, normalised views)."""
        for start in range(0, len(self.index), size):
            part = slice(start, start + size)
            valid = self.valid[part]
            video = transform.finish(self.views[part])
            video[~valid] = 0.0  # the dataset's blank for an undecodable view
            yield {
                "video": video,
                "index": self.index[part],
                "clip": self.clip[part],
                "crop": self.crop[part],
                "label": self.label[part],
                "valid": valid,
                "error_kind": self.error_kind[part],
            }


class _RawViews(EvalTransform):
    """The dataset's eval transform stopped before normalising: uint8 views for the cache."""

    def __call__(self, frames, size: int, crop_index: int = 0, num_crops: int = 1) -> torch.Tensor:
        return torch.from_numpy(self.view(frames, size, crop_index, num_crops))


class ClipCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.code = _code_digest()

    def entry(self, dataset) -> Path:
        """The file of `dataset`'s test views (an evaluation dataset: VideoClassification or VideoText)."""
        classification = isinstance(dataset, VideoClassification)
        key = {
            "manifest": hashlib.sha256(Path(dataset.manifest).read_bytes()).hexdigest(),
            "media": [[path, *_stamp(dataset.data_dir / path)] for path in dataset.rows["media_path"]],
            "split": dataset.split,
            "kind": type(dataset).__name__,
            "frames": dataset.frames,
            "resolution": dataset.resolution,
            "frame_sampling": vars(dataset.frame_sampling),
            "views": [dataset.num_clips, dataset.num_crops] if classification else [1, 1],
            "decode_threads": dataset.decode_threads,
            "code": self.code,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return self.root / f"{dataset.info.dataset}-{dataset.split}-{digest[:20]}.pt"

    def views(self, dataset, workers: int) -> CachedViews:
        path = self.entry(dataset)
        if path.is_file():
            return CachedViews(**torch.load(path, weights_only=True))
        cached = self._decode(dataset, workers)
        with atomic_path(path) as temporary:
            torch.save(vars(cached), temporary)
        logger.info("clip cache: wrote %s (%d views, %.1f MB)", path, len(cached.index), path.stat().st_size / 2**20)
        return cached

    @staticmethod
    def _decode(dataset, workers: int) -> CachedViews:
        transform = dataset.eval_transform
        dataset.eval_transform = _RawViews(transform.mean, transform.std)
        try:
            items = list(DataLoader(dataset, batch_size=None, num_workers=workers))
        finally:
            dataset.eval_transform = transform
        shape = next((item["video"].shape for item in items if item["valid"]), None)
        if shape is None:  # nothing decoded: the blanks' (C, T, H, W) as (T, H, W, C)
            shape = items[0]["video"].permute(1, 2, 3, 0).shape
        views = torch.stack([item["video"] if item["valid"] else torch.zeros(shape, dtype=torch.uint8) for item in items])
        column = lambda key, default: torch.tensor([int(item.get(key, default)) for item in items])  # noqa: E731
        return CachedViews(
            views=views,
            index=column("index", 0),
            clip=column("clip", 0),
            crop=column("crop", 0),
            label=column("label", -1),
            valid=torch.tensor([bool(item["valid"]) for item in items]),
            error_kind=[item["error_kind"] for item in items],
        )


def test_batches(dataset, cache: ClipCache | None, workers: int, size: int, transform: EvalTransform):
    """A test dataset's batches: read from the clip cache where the evaluation has one, else decoded by a loader."""
    if cache is not None:
        return cache.views(dataset, workers).batches(size, transform)
    return DataLoader(dataset, batch_size=size, num_workers=workers)
