"""Clip transforms: hand-computed crop boxes, one draw per clip, determinism from the seed."""

import numpy as np
import pytest
import torch

from flux.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Box,
    ClipRandAugment,
    EvalTransform,
    TrainTransform,
    multi_scale_crop_box,
    normalize,
    random_erasing,
    random_resized_crop_box,
    resize_short_side,
    to_tensor,
    view_boxes,
)


def clip(frames=4, height=48, width=64, seed=0, identical=False):
    rng = np.random.default_rng(seed)
    if identical:
        return np.repeat(rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8), frames, axis=0)
    return rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def test_to_tensor_and_normalize_by_hand():
    frames = np.full((2, 4, 5, 3), 255, dtype=np.uint8)
    video = normalize(to_tensor(frames), IMAGENET_MEAN, IMAGENET_STD)
    assert video.shape == (3, 2, 4, 5)
    # (1 - 0.485) / 0.229 = 2.2489...
    assert video[0, 0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229)
    assert video[2, 1, 3, 4].item() == pytest.approx((1 - 0.406) / 0.225)
    with pytest.raises(ValueError):
        to_tensor(np.zeros((4, 5, 3), dtype=np.uint8))


def test_view_boxes_official_offsets():
    # landscape 224 x 298: step (298 - 224) / 2 = 37 -> left edges 0, 37, 74; one crop: int(74 / 2) = 37
    assert view_boxes(224, 298, 224, 3) == [Box(0, 0, 224, 224), Box(0, 37, 224, 224), Box(0, 74, 224, 224)]
    assert view_boxes(224, 298, 224, 1) == [Box(0, 37, 224, 224)]
    # portrait: crops move down the long side
    assert view_boxes(300, 224, 224, 3) == [Box(0, 0, 224, 224), Box(38, 0, 224, 224), Box(76, 0, 224, 224)]


def test_random_resized_crop_stays_inside_and_respects_scale():
    for seed in range(200):
        box = random_resized_crop_box(48, 64, (0.08, 1.0), (0.75, 4 / 3), np.random.default_rng(seed))
        assert 0 <= box.top and box.top + box.height <= 48 and 0 <= box.left and box.left + box.width <= 64
        assert box.height * box.width <= 48 * 64
    # an impossible aspect ratio falls back to the centre crop clamped to the nearest allowed ratio
    assert random_resized_crop_box(10, 100, (0.99, 1.0), (1.0, 1.0), np.random.default_rng(0)) == Box(0, 45, 10, 10)


def test_multi_scale_crop_sizes_and_positions():
    sizes = {int(48 * s) for s in (1.0, 0.875, 0.75, 0.66)}  # 48, 42, 36, 31
    for seed in range(100):
        box = multi_scale_crop_box(48, 64, (1.0, 0.875, 0.75, 0.66), np.random.default_rng(seed))
        assert box.height in sizes and box.width in sizes
        assert box.top + box.height <= 48 and box.left + box.width <= 64
        assert box.top % ((48 - box.height) // 4 or 1) == 0


def test_train_transform_same_draw_for_every_frame():
    frames = clip(identical=True)
    for crop in ("random_resized", "multi_scale"):
        out = TrainTransform(crop=crop)(frames, 32, np.random.default_rng(3))
        assert out.shape == (3, 4, 32, 32)
        assert all(torch.equal(out[:, 0], out[:, t]) for t in range(1, 4))


def test_train_transform_is_deterministic_per_seed():
    frames = clip()
    transform = TrainTransform(rand_augment="rand-m9-n2-mstd0.5-inc1")
    first = transform(frames, 28, np.random.default_rng(7))
    assert torch.equal(first, transform(frames, 28, np.random.default_rng(7)))
    assert not torch.equal(first, transform(frames, 28, np.random.default_rng(8)))


def test_flip_only_when_allowed():
    frames = clip()
    full = dict(scale=(1.0, 1.0), ratio=(64 / 48, 64 / 48))
    unflipped = normalize(
        torch.nn.functional.interpolate(to_tensor(frames), size=(24, 24), mode="bilinear"),  # no antialias: official
        IMAGENET_MEAN,
        IMAGENET_STD,
    )
    outcomes = set()
    for seed in range(20):
        out = TrainTransform(**full)(frames, 24, np.random.default_rng(seed))
        outcomes.add(
            "flipped"
            if torch.allclose(out, unflipped.flip(-1), atol=1e-5)
            else "plain"
            if torch.allclose(out, unflipped, atol=1e-5)
            else "other"
        )
        assert torch.allclose(TrainTransform(flip=False, **full)(frames, 24, np.random.default_rng(seed)), unflipped, atol=1e-5)
    assert outcomes == {"flipped", "plain"}


def test_clip_rand_augment_applies_the_same_ops_to_every_frame():
    augment = ClipRandAugment("rand-m9-n3-mstd0.5-inc1")
    frames = clip(frames=5, identical=True)
    changed = 0
    for seed in range(10):
        out = augment(frames, np.random.default_rng(seed))
        assert out.shape == frames.shape and out.dtype == np.uint8
        assert all(np.array_equal(out[0], out[t]) for t in range(1, 5))
        changed += not np.array_equal(out[0], frames[0])
    assert changed >= 5  # it really augments


def test_eval_transform_views():
    frames = clip(height=48, width=64)
    views = [EvalTransform()(frames, 32, k, 3) for k in range(3)]
    assert all(v.shape == (3, 4, 32, 32) for v in views)
    assert not torch.equal(views[0], views[2])
    with pytest.raises(ValueError):
        EvalTransform()(frames, 32, 3, 3)


def test_eval_transform_in_two_steps_is_the_one_step_transform():
    """`view` (uint8, what the clip cache keeps) then `finish`, on one view or a batch, gives exactly the values of
    resize, crop, to [0, 1] and normalise done on floats."""
    frames = clip(height=40, width=64)
    transform = EvalTransform()
    for crop in range(3):
        float_path = to_tensor(resize_short_side(frames, 32))
        box = view_boxes(32, float_path.shape[-1], 32, 3)[crop]
        expected = normalize(box.apply(float_path), transform.mean, transform.std)
        view = transform.view(frames, 32, crop, 3)
        assert view.dtype == np.uint8 and view.shape == (4, 32, 32, 3)
        assert torch.equal(transform(frames, 32, crop, 3), expected)
        batch = transform.finish(torch.from_numpy(np.stack([view, view])))
        assert batch.shape == (2, 3, 4, 32, 32) and torch.equal(batch[1], expected)


def test_eval_normalisation_by_hand():
    red = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    video = EvalTransform()(red, 2)
    assert video.shape == (3, 1, 2, 2)
    assert torch.allclose(video[:, 0, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225]))


def test_test_time_resize_is_the_official_loaders():
    """OpenCV bilinear without antialiasing on uint8 frames, long side truncated, nothing done at the size."""
    frames = clip(height=48, width=70)
    resized = resize_short_side(frames, 32)
    assert resized.shape == (4, 32, 46, 3) and resized.dtype == np.uint8  # int(32 * 70 / 48) = int(46.67)
    assert resize_short_side(clip(height=70, width=48), 32).shape == (4, 46, 32, 3)
    assert resize_short_side(frames, 48) is frames
    # no antialiasing: pixel for pixel what bilinear sampling at half-pixel centres gives, within uint8 rounding
    torch_bilinear = torch.nn.functional.interpolate(to_tensor(frames), size=(32, 46), mode="bilinear") * 255
    difference = (torch_bilinear - to_tensor(resized) * 255).abs()
    antialiased = torch.nn.functional.interpolate(to_tensor(frames), size=(32, 46), mode="bilinear", antialias=True) * 255
    assert float(difference.max()) <= 1.0 and float((antialiased - to_tensor(resized) * 255).abs().max()) > 1.0


def test_rand_augment_at_the_top_magnitude_does_not_fail():
    # at magnitude 10 timm's increasing posterize would keep 0 bits, which Pillow rejects
    augment = ClipRandAugment("rand-m10-n15-mstd0-inc1")
    frames = clip(frames=2)
    for seed in range(10):
        assert augment(frames, np.random.default_rng(seed)).shape == frames.shape


def test_random_erasing_is_one_box_through_every_frame_with_noise_per_frame():
    video = torch.zeros(3, 4, 56, 56)
    erased = random_erasing(video, 1.0, np.random.default_rng(0))
    changed = (erased != 0).any(dim=0)  # (T, H, W)
    assert changed.any() and all(torch.equal(changed[t], changed[0]) for t in range(4))  # the same box in every frame
    rows, columns = changed[0].nonzero(as_tuple=True)
    height, width = int(rows.max() - rows.min() + 1), int(columns.max() - columns.min() + 1)
    assert changed[0].sum() == height * width and 0.02 * 56 * 56 <= height * width <= 56 * 56 / 3 + 56
    box = erased[:, :, rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    assert not torch.equal(box[:, 0], box[:, 1]) and abs(float(box.std()) - 1.0) < 0.2  # N(0, 1) per frame and pixel
    assert torch.equal(video, torch.zeros(3, 4, 56, 56))  # the input is not modified
    rng = np.random.default_rng(0)
    assert random_erasing(video, 0.0, rng) is video and rng.random() == np.random.default_rng(0).random()  # no draw
    kept = sum(bool((random_erasing(video, 0.25, np.random.default_rng(seed)) != 0).any()) for seed in range(400))
    assert 70 <= kept <= 130  # erased in about a quarter of the clips
