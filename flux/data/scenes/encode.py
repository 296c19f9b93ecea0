"""Writing frames as h264 mp4 (yuv420p through PyAV) and images as JPEG, atomically."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from flux.io import atomic_path


def _rgb_to_yuv420p_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., H, W, 3) uint8 RGB (H, W even) -> Y (..., H, W), Cb and Cr (..., H/2, W/2) uint8,
    BT.601 limited range in exact integer arithmetic (the same on every platform); chroma from
    2x2 block averages. Pixelwise/blockwise, so converting a 2-aligned sub-block of a frame gives
    exactly the corresponding part of the whole frame's planes."""
    r, g, b = (rgb[..., k].astype(np.int32) for k in range(3))
    # BT.601 coefficients scaled by 2**16 (rows sum to 219/255 and 0 * 2**16 exactly)
    y = r * 16829
    y += g * 33039
    y += b * 6416
    y += (16 << 16) + (1 << 15)
    y >>= 16

    def quad(c: np.ndarray) -> np.ndarray:  # sum of each 2x2 block
        s = c[..., 0::2, 0::2] + c[..., 1::2, 0::2]
        s += c[..., 0::2, 1::2]
        s += c[..., 1::2, 1::2]
        return s

    rs, gs, bs = quad(r), quad(g), quad(b)
    # the block sums carry a factor 4 = 2**2
    cb = (-9714 * rs - 19070 * gs + 28784 * bs + (128 << 18) + (1 << 17)) >> 18
    cr = (28784 * rs - 24103 * gs - 4681 * bs + (128 << 18) + (1 << 17)) >> 18
    # ranges are Y in [16, 235], Cb/Cr in [16, 240] by construction: no clipping needed
    return y.astype(np.uint8), cb.astype(np.uint8), cr.astype(np.uint8)


def _rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, 3H/2, W) uint8 yuv420p as PyAV's `from_ndarray` lays it out
    (Y plane, then Cb, then Cr, flattened)."""
    T, H, W, _ = frames.shape
    y, cb, cr = _rgb_to_yuv420p_planes(frames)
    flat = np.concatenate([y.reshape(T, -1), cb.reshape(T, -1), cr.reshape(T, -1)], axis=1)
    return flat.reshape(T, H * 3 // 2, W)


def _iter_yuv420p(frames: np.ndarray):
    """Yield (Y, Cb, Cr) planes frame by frame. Only the 2-aligned box of pixels that changed
    since the previous frame is converted again (synthetic scenes have static backgrounds);
    the result is identical to converting every frame in full. The yielded arrays are reused:
    consume them before advancing."""
    T, H, W, _ = frames.shape
    y, cb, cr = _rgb_to_yuv420p_planes(frames[0])
    yield y, cb, cr
    for t in range(1, T):
        changed = frames[t].reshape(H, W * 3) != frames[t - 1].reshape(H, W * 3)
        rows = np.flatnonzero(changed.any(axis=1))
        if rows.size:
            cols = np.flatnonzero(changed[rows[0] : rows[-1] + 1].any(axis=0).reshape(W, 3).any(axis=1))
            y0, y1 = rows[0] & ~1, (rows[-1] + 2) & ~1
            x0, x1 = cols[0] & ~1, (cols[-1] + 2) & ~1
            py, pb, pr = _rgb_to_yuv420p_planes(frames[t, y0:y1, x0:x1])
            y[y0:y1, x0:x1] = py
            cb[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = pb
            cr[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = pr
        yield y, cb, cr


def _fill_plane(plane, data: np.ndarray) -> None:
    """Copy a (h, w) uint8 array into an AVFrame plane, honouring its line padding."""
    h, w = data.shape
    if plane.line_size == w:
        plane.update(np.ascontiguousarray(data))
    else:
        buf = np.zeros((h, plane.line_size), dtype=np.uint8)
        buf[:, :w] = data
        plane.update(buf)


_X264_PRESET = "ultrafast"


def write_mp4(frames: np.ndarray, fps: int, path: Path) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as h264 yuv420p mp4 (libx264, one thread, so the
    bytes are identical for identical input). Atomic: writes a temp file in the target directory
    and renames it over `path`; parent directories are created."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    T, H, W, _ = frames.shape
    if T < 1 or H % 2 or W % 2:
        raise ValueError(f"frames need T >= 1 and even H, W (yuv420p); got {frames.shape}")
    if int(fps) != fps or fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    fps = int(fps)
    with atomic_path(Path(path)) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        cc = stream.codec_context
        cc.thread_count = 1
        cc.time_base = Fraction(1, fps)
        cc.gop_size = 2 * fps
        stream.options = {"preset": _X264_PRESET, "crf": "18", "threads": "1"}
        for i, planes in enumerate(_iter_yuv420p(frames)):
            vf = av.VideoFrame(W, H, "yuv420p")
            for plane, data in zip(vf.planes, planes):
                _fill_plane(plane, data)
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_jpeg(image: np.ndarray, path: Path, quality: int = 90) -> None:
    """Save an (H, W, 3) uint8 RGB image as JPEG, atomically (temp file + os.replace)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=int(quality))
