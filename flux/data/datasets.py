"""Datasets over manifests: video classification, video-text and image-text.

Training items are keyed `(index, frames, resolution)` by `FlexibleBatchSampler` (a plain index uses the
dataset's default shape). With `repeats` > 1 (the official `--num_sample`), a training video is decoded once
and augmented that many times independently; `collate_clips` lays the clips out side by side in the batch.
An item whose file fails to decode at training time is replaced by another
(drawn from the item's own seeded generator) at most `max_retries` times in a row, and every failure is
counted in `failures`. A file that failed is never drawn again: the item reports it (`decode_failed`), the
trainer keeps the list for the rest of the run and its resumes and hands it back to each epoch's datasets
(`exclude`), so a mid-file corruption the index could not see costs one failure, not a replayed one per
resume. Evaluation never substitutes: an undecodable video yields its views with `valid = False`, so the
evaluator keeps it in the denominator; a file the index found undecodable is counted from the manifest and
never opened again (one that crashed the decoder would take the evaluation with it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from flux.data import sampling
from flux.data.chat_prompts import caption_turns, turn_prompt
from flux.data.index import ManifestInfo, read_manifest
from flux.data.transforms import EvalTransform, TrainTransform
from flux.data.video import FailureLog, read_image, read_video
from flux.errors import DecodeError, FluxError

logger = logging.getLogger(__name__)

Key = int | tuple[int, int, int]


@dataclass(frozen=True)
class FrameSampling:
    """How frames are picked from a video: `tsn` (one per segment; the FluxViT default), `ssv2` (the official
    SSv2 loader's segments and test views), `dense` (clip_len x stride window), or `sparse` (ClipBERT: `clips`
    short clips of `clip_seconds`, concatenated)."""

    scheme: str = "tsn"
    stride: int = 4
    clips: int = 1
    clip_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in ("tsn", "ssv2", "dense", "sparse"):
            raise ValueError(f"frame sampling scheme must be tsn, ssv2, dense or sparse, got '{self.scheme}'")

    def train(self, num_frames: int, fps: float, count: int, rng: np.random.Generator) -> list[int]:
        if self.scheme == "tsn":
            return sampling.tsn_train_indices(num_frames, count, rng)
        if self.scheme == "ssv2":
            return sampling.ssv2_train_indices(num_frames, count, rng)
        if self.scheme == "dense":
            return sampling.dense_train_indices(num_frames, count, self.stride, rng)
        return self._sparse(num_frames, fps, count, rng)

    def test(self, num_frames: int, fps: float, count: int, clip_index: int, num_clips: int) -> list[int]:
        if self.scheme == "tsn":
            return sampling.tsn_test_indices(num_frames, count, clip_index, num_clips)
        if self.scheme == "ssv2":
            return sampling.ssv2_test_indices(num_frames, count, clip_index, num_clips)
        if self.scheme == "dense":
            return sampling.dense_test_indices(num_frames, count, self.stride, clip_index, num_clips)
        return self._sparse(num_frames, fps, count, None)

    def _sparse(self, num_frames: int, fps: float, count: int, rng: np.random.Generator | None) -> list[int]:
        if count % self.clips:
            raise ValueError(f"sparse sampling: {count} frames do not split into {self.clips} clips")
        clips = sampling.sparse_clip_indices(num_frames, fps, self.clips, self.clip_seconds, count // self.clips, rng)
        return [index for clip in clips for index in clip]


class ManifestDataset(Dataset):
    """Rows of one split of a manifest; media paths are relative to `data_dir`."""

    def __init__(
        self,
        manifest: Path,
        data_dir: Path,
        split: str,
        train: bool,
        frames: int = 8,
        resolution: int = 224,
        frame_sampling: FrameSampling | None = None,
        train_transform: TrainTransform | None = None,
        eval_transform: EvalTransform | None = None,
        seed: int = 0,
        max_retries: int = 3,
        decode_threads: int = 1,
        repeats: int = 1,
        max_items: int | None = None,
    ) -> None:
        if repeats < 1:
            raise FluxError(f"repeats must be at least 1, got {repeats}")
        frame, info = read_manifest(manifest)
        rows = frame[frame["split"] == split]
        if rows.empty:
            available = sorted(frame["split"].unique())
            raise FluxError(f"{manifest}: no items in split '{split}' (splits: {available})")
        if max_items is not None and len(rows) > max_items:  # evaluation on a seeded subset, in manifest order
            if train:
                raise FluxError("max_items subsamples an evaluation split; training reads its whole split")
            rows = rows.iloc[np.sort(np.random.default_rng(seed).permutation(len(rows))[:max_items])]
        self.manifest = Path(manifest)
        self.info: ManifestInfo = info
        self.total_items = len(rows)
        if train:
            undecodable = rows[~rows["decodable"]]
            if len(undecodable):
                kinds = undecodable["error_kind"].value_counts().to_dict()
                logger.warning(
                    "%s/%s: %d undecodable item(s) left out of training: %s", info.dataset, split, len(undecodable), kinds
                )
            rows = rows[rows["decodable"]]
            if rows.empty:
                raise FluxError(f"{manifest}: every item of split '{split}' is undecodable; see the index report")
        self.rows = rows.reset_index(drop=True)
        self.data_dir = Path(data_dir)
        self.split = split
        self.train = train
        self.frames = frames
        self.resolution = resolution
        self.frame_sampling = frame_sampling or FrameSampling()
        flip = info.allow_flip
        self.train_transform = train_transform or TrainTransform(flip=flip)
        if self.train_transform.flip and not flip:
            raise FluxError(
                f"{info.dataset} has direction-sensitive labels (allow_flip: false); build the transform with flip=False"
            )
        self.eval_transform = eval_transform or EvalTransform()
        self.seed = seed
        self.max_retries = max_retries
        self.decode_threads = decode_threads
        self.repeats = repeats
        self.epoch = 0
        self.failures = FailureLog()
        self.excluded: set[int] = set()  # positions whose file failed at run time: never drawn again

    def exclude(self, media_paths: set[str]) -> None:
        """Never draw these files (media paths relative to the data directory) again."""
        self.excluded |= set(np.flatnonzero(self.rows["media_path"].isin(media_paths)).tolist())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _path(self, position: int) -> Path:
        return self.data_dir / self.rows.at[position, "media_path"]

    def _decode(self, position: int, count: int, rng: np.random.Generator | None, clip_index: int, num_clips: int) -> np.ndarray:
        path = self._path(position)
        if not self.rows.at[position, "decodable"]:  # evaluation keeps these rows: counted, never opened again
            kind = self.rows.at[position, "error_kind"] or "undecodable"
            detail = self.rows.at[position, "error_detail"] or ""
            raise DecodeError(str(path), kind, f"indexed as undecodable, not opened ({detail})")
        if self.rows.at[position, "media_type"] == "image":
            return read_image(path)
        if rng is not None:
            choose = lambda n, fps: self.frame_sampling.train(n, fps, count, rng)  # noqa: E731
        else:
            choose = lambda n, fps: self.frame_sampling.test(n, fps, count, clip_index, num_clips)  # noqa: E731
        return read_video(path, choose, self.decode_threads, self.info.trim_seconds).frames

    def _augmented(self, frames: np.ndarray, resolution: int, rng: np.random.Generator) -> torch.Tensor:
        """(C, T, R, R), or (repeats, C, T, R, R): independent augmentations of one decode."""
        if self.repeats == 1:
            return self.train_transform(frames, resolution, rng)
        return torch.stack([self.train_transform(frames, resolution, rng) for _ in range(self.repeats)])

    def _replacement(self, rng: np.random.Generator) -> int:
        """Another position, never an excluded one (without exclusions: the same draw as always)."""
        if len(self.excluded) >= len(self.rows):
            raise FluxError(
                f"{self.info.dataset}/{self.split}: every one of its {len(self.rows)} items failed to decode at run time "
                f"({self.failures.as_dict()['counts']}); re-run `flux index` and check the report"
            )
        while True:
            position = int(rng.integers(len(self.rows)))
            if position not in self.excluded:
                return position

    def _train_item(self, key: Key) -> tuple[int, np.ndarray, int, np.random.Generator, dict[str, Any]]:
        """Decode a training item with a bounded number of replacements.

        Returns (position, frames, R, rng, report): the report goes into the item, because `self.failures`
        lives in each DataLoader worker's copy of the dataset, out of the trainer's sight: `decode_failures`
        (failed attempts) and `decode_failed` (JSON [[media path, kind], ...] of the files that failed).
        """
        position, frames, resolution = key if isinstance(key, tuple) else (key, self.frames, self.resolution)
        failed: list[list[str]] = []
        attempt = 0
        while True:
            rng = np.random.default_rng((self.seed, self.epoch, position, attempt))
            if position not in self.excluded:
                try:
                    decoded = self._decode(position, frames, rng, 0, 1)
                    report = {"decode_failures": len(failed), "decode_failed": json.dumps(failed)}
                    return position, decoded, resolution, rng, report
                except DecodeError as error:
                    self.failures.record(error)
                    self.excluded.add(position)
                    failed.append([str(self.rows.at[position, "media_path"]), error.kind])
                    if len(failed) > self.max_retries:
                        raise FluxError(
                            f"{self.info.dataset}/{self.split}: {len(failed)} items in a row failed to decode "
                            f"({self.failures.as_dict()['counts']}); re-run `flux index` and check the report"
                        ) from None
            position = self._replacement(rng)
            attempt += 1


class VideoClassification(ManifestDataset):
    """Training: (C, T, R, R) clips with labels. Evaluation: `num_clips x num_crops` views per video."""

    def __init__(self, *args: Any, num_clips: int = 1, num_crops: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.info.task != "classification":
            raise FluxError(f"{self.info.dataset} is a {self.info.task} dataset, not a classification one")
        if (self.rows["label_id"] < 0).any() and self.train:
            raise FluxError(f"{self.info.dataset}/{self.split} has unlabelled items; it cannot be trained on")
        self.num_clips = num_clips
        self.num_crops = num_crops
        # the last decoded test clip: a video's crops of one clip are consecutive keys, so they share one decode
        self._last_clip: tuple[tuple[int, int], np.ndarray] | None = None

    def _test_clip(self, position: int, clip_index: int) -> np.ndarray:
        if self._last_clip is None or self._last_clip[0] != (position, clip_index):
            self._last_clip = None  # a failing decode must not leave another clip's frames to be reused
            frames = self._decode(position, self.frames, None, clip_index, self.num_clips)
            self._last_clip = ((position, clip_index), frames)
        return self._last_clip[1]

    @property
    def num_classes(self) -> int:
        return len(self.info.class_names or [])

    def __len__(self) -> int:
        return len(self.rows) if self.train else len(self.rows) * self.num_clips * self.num_crops

    def __getitem__(self, key: Key) -> dict[str, Any]:
        if self.train:
            position, frames, resolution, rng, report = self._train_item(key)
            return {
                "video": self._augmented(frames, resolution, rng),
                "label": int(self.rows.at[position, "label_id"]),
                "index": position,
                **report,
            }
        views = self.num_clips * self.num_crops
        position, view = divmod(int(key), views)
        clip_index, crop_index = divmod(view, self.num_crops)
        item = {"label": int(self.rows.at[position, "label_id"]), "index": position, "clip": clip_index, "crop": crop_index}
        try:
            frames = self._test_clip(position, clip_index)
        except DecodeError as error:
            self.failures.record(error)
            blank = torch.zeros(3, self.frames, self.resolution, self.resolution)
            return {**item, "video": blank, "valid": False, "error_kind": error.kind}
        video = self.eval_transform(frames, self.resolution, crop_index, self.num_crops)
        return {**item, "video": video, "valid": True, "error_kind": ""}


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """default_collate, then repeated clips (B, repeats, C, T, H, W) flattened to (B * repeats, ...), each
    video's clips side by side (the official `multiple_samples_collate` order), with their labels."""
    batch = default_collate(items)
    video = batch["video"]
    if video.dim() == 6:
        repeats = video.shape[1]
        batch["video"] = video.flatten(0, 1)
        for key in ("label", "index", "source"):
            if key in batch:
                batch[key] = batch[key].repeat_interleave(repeats)
    return batch


class VideoText(ManifestDataset):
    """Training: a clip and one of its captions (paragraph datasets: all sentences joined).
    Evaluation: one centre view per video; captions come from `texts()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.repeats != 1:
            raise FluxError("video-text training draws one caption per clip: repeated augmentation is not supported")
        if self.info.task not in ("video_text", "image_text"):
            raise FluxError(f"{self.info.dataset} has no captions (task {self.info.task})")
        empty = self.rows["captions"].map(len) == 0
        if empty.any():
            raise FluxError(f"{self.info.dataset}/{self.split}: {int(empty.sum())} item(s) have no caption; fix the annotations")

    def __len__(self) -> int:
        return len(self.rows)

    def texts(self, position: int) -> list[str]:
        captions = list(self.rows.at[position, "captions"])
        return [" ".join(captions)] if self.info.paragraph else captions

    def __getitem__(self, key: Key) -> dict[str, Any]:
        if self.train:
            position, frames, resolution, rng, report = self._train_item(key)
            video = self.train_transform(frames, resolution, rng)
            texts = self.texts(position)
            return {"video": video, "text": texts[int(rng.integers(len(texts)))], "index": position, **report}
        position = int(key)
        try:
            frames = self._decode(position, self.frames, None, 0, 1)
        except DecodeError as error:
            self.failures.record(error)
            blank = torch.zeros(3, 1 if self.info.modality == "image" else self.frames, self.resolution, self.resolution)
            return {"video": blank, "index": position, "valid": False, "error_kind": error.kind}
        return {"video": self.eval_transform(frames, self.resolution), "index": position, "valid": True, "error_kind": ""}


class VideoChat(VideoText):
    """The chat stage's data: a clip and one of its instruction turns (flux.data.chat_prompts): a captioned video's
    captions as "Describe the video in detail." turns, an instruction dataset's {i, q, a} turns as written.
    Evaluation: one centre view per video; the benchmark's question or events come from `details()`."""

    TASKS = ("video_text", "video_instruction", "video_qa", "video_caption")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ManifestDataset.__init__(self, *args, **kwargs)
        if self.info.task not in self.TASKS:
            raise FluxError(f"{self.info.dataset} has neither captions nor instructions (task {self.info.task})")

    def details(self, position: int) -> dict[str, Any]:
        raw = self.rows.at[position, "details"] if "details" in self.rows else None
        if not raw:
            raise FluxError(f"{self.manifest}: item {self.rows.at[position, 'sample_id']} has no details; re-index the dataset")
        return json.loads(raw)

    def turns(self, position: int) -> list[dict[str, str]]:
        if self.info.task == "video_instruction":
            return self.details(position)["turns"]
        return caption_turns(self.texts(position))

    def __getitem__(self, key: Key) -> dict[str, Any]:
        if not self.train:
            return super().__getitem__(key)
        position, frames, resolution, rng, report = self._train_item(key)
        turns = self.turns(position)
        turn = turns[int(rng.integers(len(turns)))]
        video = self.train_transform(frames, resolution, rng)
        return {"video": video, "prompt": turn_prompt(turn["i"], turn["q"]), "target": turn["a"], "index": position, **report}


class ImageText(VideoText):
    """Images as one-frame clips (C, 1, R, R) with their captions, for image-text pre-training."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.info.modality != "image":
            raise FluxError(f"{self.info.dataset} holds {self.info.modality}s, not images; use VideoText")


class VideoClips(ManifestDataset):
    """Training clips without targets (distillation pre-training reads any video dataset this way)."""

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Key) -> dict[str, Any]:
        if not self.train:
            raise FluxError("VideoClips serves training clips; evaluate with VideoClassification or VideoText")
        position, frames, resolution, rng, report = self._train_item(key)
        return {"video": self._augmented(frames, resolution, rng), "index": position, **report}


class KeyedConcat(Dataset):
    """Datasets side by side, indexed by (global index, T, R) keys as the flexible batch sampler makes them."""

    def __init__(self, datasets: list[Dataset]) -> None:
        if not datasets:
            raise FluxError("KeyedConcat needs at least one dataset")
        self.datasets = datasets
        self.offsets = np.cumsum([0] + [len(dataset) for dataset in datasets]).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)

    def exclude(self, media_paths: set[str]) -> None:
        for dataset in self.datasets:
            dataset.exclude(media_paths)

    def __getitem__(self, key: Key) -> dict[str, Any]:
        index, *shape = key if isinstance(key, tuple) else (key,)
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        local = index - self.offsets[part]
        item = self.datasets[part][(local, *shape) if shape else local]
        return {**item, "source": part}
