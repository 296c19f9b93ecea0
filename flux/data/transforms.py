"""Clip transforms: one random draw per clip, applied identically to every frame.

Frames arrive as (T, H, W, 3) uint8 from the decoder; models take (C, T, H, W) float, normalised. The
crop size is a call argument because the flexible sampler picks the resolution per batch.
Randomness comes from the `numpy.random.Generator` passed in, so a seed fixes the augmentation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [0, 1]."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(T, 3, H, W) -> (3, T, H, W), normalised."""
    mean_t = torch.tensor(mean, dtype=video.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=video.dtype).view(1, 3, 1, 1)
    return ((video - mean_t) / std_t).permute(1, 0, 2, 3).contiguous()


def resize(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    # (T, 3, H, W) -> (T, 3, height, width); bilinear without antialiasing, as the official training crop
    if video.shape[-2:] == (height, width):
        return video
    return F.interpolate(video, size=(height, width), mode="bilinear", align_corners=False)


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 with the short side resized to `size`, as the official test loader does it
    (`resize_clip`: OpenCV INTER_LINEAR per frame, no antialiasing, uint8 out; the long side int(size x long /
    short), truncated; frames whose short side is already `size` are left as they are)."""
    import cv2

    height, width = frames.shape[1:3]
    if min(height, width) == size:
        return frames
    if width < height:
        new_width, new_height = size, int(size * height / width)
    else:
        new_width, new_height = int(size * width / height), size
    return np.stack([cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_LINEAR) for frame in frames])


@dataclass(frozen=True)
class Box:
    top: int
    left: int
    height: int
    width: int

    def apply(self, video: torch.Tensor) -> torch.Tensor:
        return video[..., self.top : self.top + self.height, self.left : self.left + self.width]


def random_resized_crop_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], rng: np.random.Generator
) -> Box:
    """torchvision's RandomResizedCrop sampling (10 tries, then a centre crop clamped to the ratio)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        crop_width = int(round(math.sqrt(target_area * aspect)))
        crop_height = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            top = int(rng.integers(0, height - crop_height + 1))
            left = int(rng.integers(0, width - crop_width + 1))
            return Box(top, left, crop_height, crop_width)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        crop_width, crop_height = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        crop_height, crop_width = height, int(round(height * ratio[1]))
    else:
        crop_width, crop_height = width, height
    return Box((height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width)


def multi_scale_crop_box(
    height: int,
    width: int,
    scales: Sequence[float],
    rng: np.random.Generator,
    max_distort: int = 1,
) -> Box:
    """TSN's GroupMultiScaleCrop: crop sides from `scales` x short side (aspect distortion at most
    `max_distort` scale steps), placed at one of 13 fixed positions (corners, centre, quarters)."""
    base = min(height, width)
    sizes = [int(base * scale) for scale in scales]
    pairs = [(h, w) for i, h in enumerate(sizes) for j, w in enumerate(sizes) if abs(i - j) <= max_distort]
    crop_height, crop_width = pairs[int(rng.integers(len(pairs)))]
    step_h, step_w = (height - crop_height) // 4, (width - crop_width) // 4
    offsets = [
        (0, 0),
        (0, 4 * step_w),
        (4 * step_h, 0),
        (4 * step_h, 4 * step_w),
        (2 * step_h, 2 * step_w),
        (0, 2 * step_w),
        (4 * step_h, 2 * step_w),
        (2 * step_h, 0),
        (2 * step_h, 4 * step_w),
        (step_h, step_w),
        (step_h, 3 * step_w),
        (3 * step_h, step_w),
        (3 * step_h, 3 * step_w),
    ]
    top, left = offsets[int(rng.integers(len(offsets)))]
    return Box(top, left, crop_height, crop_width)


def view_boxes(height: int, width: int, size: int, num_crops: int) -> list[Box]:
    """Test crops of side `size` along the long side of a frame already resized to short side `size`
    (left/centre/right for 3), with the official offsets int(k * (long - size) / (num_crops - 1))."""
    long_side = max(height, width)
    if num_crops == 1:
        starts = [int((long_side - size) / 2)]
    else:
        step = (long_side - size) / (num_crops - 1)
        starts = [int(k * step) for k in range(num_crops)]
    if height >= width:
        return [Box(start, 0, size, size) for start in starts]
    return [Box(0, start, size, size) for start in starts]


def random_erasing(video: torch.Tensor, probability: float, rng: np.random.Generator) -> torch.Tensor:
    """The official fine-tuning's RandomErasing (mode 'pixel', one box, `cube`) on a normalised (C, T, H, W)
    clip: with `probability`, one box of 2%-33% of the frame area (aspect log-uniform in [0.3, 1/0.3], up to
    100 tries) is erased at the same place in every frame, filled with N(0, 1) noise drawn per frame and pixel."""
    if probability <= 0 or rng.random() > probability:
        return video
    channels, frames, height, width = video.shape
    for _ in range(100):
        target_area = rng.uniform(0.02, 1 / 3) * height * width
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
        box_height = int(round(math.sqrt(target_area * aspect)))
        box_width = int(round(math.sqrt(target_area / aspect)))
        if box_width < width and box_height < height:
            top = int(rng.integers(0, height - box_height + 1))
            left = int(rng.integers(0, width - box_width + 1))
            noise = rng.standard_normal((channels, frames, box_height, box_width), dtype=np.float32)
            video = video.clone()
            video[:, :, top : top + box_height, left : left + box_width] = torch.from_numpy(noise).to(video.dtype)
            return video
    return video


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """timm's augment ops draw from the global `random` module; pin it for the block, then restore.

    Process-global by necessity (timm offers no generator argument): safe in DataLoader worker processes,
    not in threads sharing one interpreter."""
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


class ClipRandAugment:
    """timm RandAugment with the same ops and magnitudes on every frame of a clip.

    `config` is timm's string: the paper's RandAug(9, 0.5) is 'rand-m9-n2-mstd0.5-inc1', the released
    code's 'rand-m7-n4-mstd0.5-inc1'.
    """

    def __init__(self, config: str, mean: Sequence[float] = IMAGENET_MEAN) -> None:
        from timm.data.auto_augment import rand_augment_transform

        fill = tuple(int(round(255 * value)) for value in mean)
        # magnitudes stop just below timm's 10: at 10 its increasing posterize keeps 0 bits, which Pillow >= 10
        # rejects (ValueError); 9.99 keeps 1 bit and changes no other operation measurably
        hparams = {"translate_const": 100, "img_mean": fill, "magnitude_max": 9.99}
        self.transform = rand_augment_transform(config, hparams)
        self.config = config

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from PIL import Image

        ops = self.transform.ops
        chosen = rng.choice(len(ops), self.transform.num_layers, replace=True)
        images = [Image.fromarray(frame) for frame in frames]
        for op_index in chosen:
            op_seed = int(rng.integers(2**31))
            for position, image in enumerate(images):
                with _seeded_global_rng(op_seed):  # same coin flips and magnitude for every frame
                    images[position] = ops[op_index](image)
        return np.stack([np.asarray(image) for image in images])


@dataclass(frozen=True)
class TrainTransform:
    """RandAugment, random crop (random-resized for fine-tuning, multi-scale for pre-training), flip, normalise,
    random erasing: the official fine-tuning order.

    crop='random_resized': scale/ratio as the official fine-tuning (0.08-1, 3/4-4/3);
    crop='multi_scale': `scales` (Flux-UMT: 1, .875, .75, .66).
    """

    crop: str = "random_resized"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (0.75, 4.0 / 3.0)
    scales: tuple[float, ...] = (1.0, 0.875, 0.75, 0.66)
    flip: bool = True
    rand_augment: str | None = None
    erase_probability: float = 0.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.crop not in ("random_resized", "multi_scale"):
            raise ValueError(f"crop must be 'random_resized' or 'multi_scale', got '{self.crop}'")
        augment = ClipRandAugment(self.rand_augment, self.mean) if self.rand_augment else None
        object.__setattr__(self, "_augment", augment)

    def __call__(self, frames: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (3, T, size, size) float."""
        if self._augment is not None:
            frames = self._augment(frames, rng)
        video = to_tensor(frames)
        height, width = video.shape[-2:]
        if self.crop == "random_resized":
            box = random_resized_crop_box(height, width, self.scale, self.ratio, rng)
        else:
            box = multi_scale_crop_box(height, width, self.scales, rng)
        video = resize(box.apply(video), size, size)
        if self.flip and rng.random() < 0.5:
            video = video.flip(-1)
        return random_erasing(normalize(video, self.mean, self.std), self.erase_probability, rng)


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to `size` (as the official test loader), take crop `crop_index` of `num_crops`
    (1 = centre), normalise. In two steps, `view` (uint8, what flux.eval.clip_cache keeps) and `finish`, which
    give exactly the values of the one-step call."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, frames: np.ndarray, size: int, crop_index: int = 0, num_crops: int = 1) -> torch.Tensor:
        return self.finish(torch.from_numpy(self.view(frames, size, crop_index, num_crops)))

    def view(self, frames: np.ndarray, size: int, crop_index: int = 0, num_crops: int = 1) -> np.ndarray:
        """(T, H, W, 3) uint8 -> the test view (T, size, size, 3) uint8."""
        if not 0 <= crop_index < num_crops:
            raise ValueError(f"crop_index {crop_index} outside 0..{num_crops - 1}")
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
        resized = resize_short_side(frames, size)
        box = view_boxes(resized.shape[1], resized.shape[2], size, num_crops)[crop_index]
        return np.ascontiguousarray(resized[:, box.top : box.top + box.height, box.left : box.left + box.width])

    def finish(self, views: torch.Tensor) -> torch.Tensor:
        """uint8 views (..., T, H, W, 3) -> normalised float (..., 3, T, H, W): one view or a batch of them."""
        video = views.float().div_(255.0)
        mean = torch.tensor(self.mean, dtype=video.dtype)
        std = torch.tensor(self.std, dtype=video.dtype)
        return ((video - mean) / std).movedim(-1, -4).contiguous()
