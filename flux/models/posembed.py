"""Positional embeddings: 3D sin-cos initialisation and the global embedding's resize to any sampled grid.

FluxViT keeps one learnable embedding at a reference grid (S: 24x18x18, B: 32x20x20) and resizes it to the
grid of each input: linear over time, bicubic over space (as the official code). The official code does this
on the CPU at every forward; here it runs on the model's device and, when no gradient is being recorded,
is cached per grid (`ResizeCache`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Grid = tuple[int, int, int]  # (frames, patch rows, patch columns)


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, dim): sines of the first half of the frequencies, then cosines."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even dimension, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_3d(dim: int, grid: Grid) -> torch.Tensor:
    """(T*H*W, dim) in raster (t, h, w) order: a quarter of the channels encode time, three quarters space
    (half of those the column, half the row), as the InternVideo2 / FluxViT initialisation."""
    frames, rows, columns = grid
    if dim % 4 or (dim // 4 * 3) % 4:
        raise ValueError(f"3D sin-cos embedding needs dim divisible by 4 with 3*dim/4 divisible by 4, got {dim}")
    temporal_dim, spatial_dim = dim // 4, dim // 4 * 3
    row, column = torch.meshgrid(torch.arange(rows), torch.arange(columns), indexing="ij")
    spatial = torch.cat(
        [sincos_1d(spatial_dim // 2, column.reshape(-1)), sincos_1d(spatial_dim // 2, row.reshape(-1))], dim=1
    )  # (H*W, 3D/4)
    temporal = sincos_1d(temporal_dim, torch.arange(frames))  # (T, D/4)
    return torch.cat(
        [temporal[:, None, :].expand(frames, rows * columns, temporal_dim), spatial[None].expand(frames, -1, -1)],
        dim=2,
    ).reshape(frames * rows * columns, dim)


def interpolation_matrix(size_in: int, size_out: int, mode: str) -> torch.Tensor:
    """(size_out, size_in) weights of 1-D linear or bicubic resizing (align_corners=False), read off by
    resizing the identity: F.interpolate is linear in its input, and its bicubic mode is separable."""
    if mode == "linear":
        basis = torch.eye(size_in).reshape(size_in, 1, size_in)
        return F.interpolate(basis, size=size_out, mode="linear", align_corners=False)[:, 0, :].T
    basis = torch.eye(size_in).reshape(size_in, 1, size_in, 1)
    return F.interpolate(basis, size=(size_out, 1), mode="bicubic", align_corners=False)[:, 0, :, 0].T


def resize_grid(embedding: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(C, T0, H0, W0) -> (C, T, H, W): linear interpolation over time, bicubic over space.

    The same numbers as F.interpolate (linear, then bicubic), computed as three small matrix products:
    several times faster forward and backward on CPU, where the resize runs at every training step.
    """
    channels, frames0, rows0, columns0 = embedding.shape
    frames, rows, columns = grid
    options = {"device": embedding.device, "dtype": embedding.dtype}
    if columns != columns0:
        embedding = embedding @ interpolation_matrix(columns0, columns, "bicubic").to(**options).T
    if rows != rows0:
        embedding = interpolation_matrix(rows0, rows, "bicubic").to(**options) @ embedding
    if frames != frames0:
        embedding = torch.einsum("ta,cahw->cthw", interpolation_matrix(frames0, frames, "linear").to(**options), embedding)
    return embedding.contiguous()


class ResizeCache:
    """Resized embeddings per (grid, device, dtype), valid while the parameters they came from are unchanged.

    Only used when autograd is off (evaluation): in training the resize must stay in the graph, and a cached
    tensor's graph would be freed by the first backward pass.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple, torch.Tensor] = {}
        self.hits = 0

    def get(self, key: tuple, versions: tuple[int, ...], compute) -> torch.Tensor:
        if torch.is_grad_enabled():
            return compute()
        entry_key = (key, versions)
        if entry_key in self._entries:
            self.hits += 1
            return self._entries[entry_key]
        if any(stored[0] == key for stored in self._entries):  # parameters changed since: drop stale entries
            self._entries = {k: v for k, v in self._entries.items() if k[0] != key}
        value = compute()
        self._entries[entry_key] = value
        return value
