"""FluxViT and the InternVideo2 vision transformer, one family in one file, sizes in a registry.

Blocks follow the official code (OpenGVLab/FluxViT `models/fluxvit.py`, inherited from InternVideo2):
pre-RMSNorm, RMSNorm on the full-width q and k, no qkv bias, LayerScale, GELU MLP, stochastic depth, no
final norm; attention through `scaled_dot_product_attention` (flash-attn only as an explicit switch).
FluxViT adds (paper Fig. 4): Dual Patch Norm (RMSNorm on the flattened raw patch, projection, RMSNorm), the
global-local position embedding (a learnable sin-cos-initialised grid through a depth-wise projection,
resized to each input's grid; a depth-wise projection of V added before the attention output projection),
and a token selector that keeps exactly `budget` patch tokens. Three attention-pooling heads / classifiers
serve the three budgets of Flux-Multi (head 0: 3072, 1: 2048, 2: 1024 tokens), two projectors align their
features. Module names match the official checkpoints.

Shapes: video (B, 3, T, H, W) with H, W multiples of the patch size; grid (T, h, w) = (T, H/p, W/p);
tokens (B, 1 + K, C) with the CLS token first and the K kept patch tokens in raster (t, h, w) order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from flux.errors import ConfigError
from flux.models.heads import DECODERS, AlignmentProjector, AttentionPooling
from flux.models.initialisation import trunc_normal_
from flux.models.posembed import Grid, ResizeCache, resize_grid, sincos_3d
from flux.models.selector import build_selector
from flux.models.sizes import SIZES, ModelSize

# The official init: timm's trunc_normal_(std=0.02) with its default absolute limits ±2 (100 std: no truncation)
INIT_STD = 0.02
INIT_LIMIT = 2.0


class ChannelAffine(nn.Module):
    """A depth-wise 1x1x1 Conv3d (official `DepthwiseConv3D`, init weight 1, bias 0), applied as the
    per-channel scale and shift it is, so it also works on an irregular set of selected tokens."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv3d(channels, channels, kernel_size=1, groups=channels)
        nn.init.ones_(self.depthwise_conv.weight)
        nn.init.zeros_(self.depthwise_conv.bias)

    def forward(self, x: torch.Tensor, channel_dim: int = -1) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[channel_dim] = -1
        return x * self.depthwise_conv.weight.reshape(shape) + self.depthwise_conv.bias.reshape(shape)


def rotary_tables(positions: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (B, 1, N, head_dim/2) of a 3D rotary embedding: the frequency pairs are split into
    three near-equal parts for the t, h and w coordinates of each token (positions: (B, N, 3))."""
    pairs = head_dim // 2
    parts = [pairs // 3 + (1 if axis < pairs % 3 else 0) for axis in range(3)]
    angles = []
    for axis, count in enumerate(parts):
        frequencies = 1.0 / 10000 ** (torch.arange(count, device=positions.device, dtype=torch.float32) / max(count, 1))
        angles.append(positions[..., axis : axis + 1].float() * frequencies)
    table = torch.cat(angles, dim=-1).unsqueeze(1)  # (B, 1, N, pairs)
    return table.cos(), table.sin()


def apply_rotary(x: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    # x (B, heads, N, d): rotate the (first half, second half) channel pairs
    cos, sin = tables
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half : 2 * half]
    rotated = torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
    return torch.cat([rotated, x[..., 2 * half :]], dim=-1).to(x.dtype)


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, local_embedding: bool, backend: str = "sdpa") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        if backend not in ("sdpa", "flash"):
            raise ConfigError(f"attention backend must be 'sdpa' or 'flash', got '{backend}'")
        self.num_heads = num_heads
        self.backend = backend
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_norm = nn.RMSNorm(dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(dim, eps=1e-6)
        self.lpe = ChannelAffine(dim) if local_embedding else None
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor | None = None,
        return_attention: bool = False,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, N, C); bias: additive attention bias broadcastable to (B, heads, N, N) (Vid-TLDR's
        size-proportional attention); rope: rotary tables of the tokens' positions. Returns (output,
        attention probabilities if asked)."""
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # (B, N, C) each
        q, k = self.q_norm(q), self.k_norm(k)
        heads = lambda t: t.reshape(batch, tokens, self.num_heads, dim // self.num_heads).transpose(1, 2)
        q_heads, k_heads = heads(q), heads(k)
        if rope is not None:
            q_heads, k_heads = apply_rotary(q_heads, rope), apply_rotary(k_heads, rope)
        attention = None
        if return_attention:
            scores = q_heads @ k_heads.transpose(-2, -1) / math.sqrt(dim // self.num_heads)
            attention = (scores if bias is None else scores + bias).softmax(dim=-1)
            out = attention @ heads(v)
        elif self.backend == "flash":
            out = _flash_attention(q_heads, k_heads, heads(v), bias)
        else:
            out = F.scaled_dot_product_attention(q_heads, k_heads, heads(v), attn_mask=bias)
        out = out.transpose(1, 2).reshape(batch, tokens, dim)
        if self.lpe is not None:
            out = out + self.lpe(v)  # the local embedding of V, added before the output projection
        return self.proj(out), attention


def _flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    try:
        from flash_attn import flash_attn_func
    except ImportError:
        raise ConfigError(
            "attention backend 'flash' needs flash-attn: install the `gpu` extra (pip install -e '.[gpu]')"
        ) from None
    if bias is not None or not q.is_cuda:
        raise ConfigError("flash attention runs on CUDA without attention bias; use backend 'sdpa' here")
    dtype = q.dtype if q.dtype in (torch.float16, torch.bfloat16) else torch.bfloat16
    out = flash_attn_func(*(t.transpose(1, 2).to(dtype) for t in (q, k, v)))  # (B, N, heads, d)
    return out.transpose(1, 2).to(q.dtype)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, size: ModelSize, drop_path: float, layer_scale: float, backend: str) -> None:
        super().__init__()
        dim = size.embed_dim
        self.norm1 = nn.RMSNorm(dim, eps=1e-6)
        self.attn = Attention(dim, size.num_heads, local_embedding=size.local_pe, backend=backend)
        self.ls1 = LayerScale(dim, layer_scale)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, size.mlp_hidden)
        self.ls2 = LayerScale(dim, layer_scale)
        if drop_path > 0:
            from timm.layers import DropPath  # only a trained model needs it; timm costs ~2 s to import

            self.drop_path = DropPath(drop_path)
        else:
            self.drop_path = nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        bias: torch.Tensor | None = None,
        return_attention: bool = False,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, attention = self.attn(self.norm1(x), bias, return_attention, rope)
        x = x + self.drop_path(self.ls1(attended))
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x, attention


class PatchEmbed(nn.Module):
    """Non-overlapping p x p patches (tubelet 1) -> tokens; with Dual Patch Norm, RMSNorm before (over the
    flattened patch, pixels in (row, column, channel) order as the official code) and after the projection."""

    def __init__(self, patch_size: int, dim: int, dual_norm: bool, channels: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(channels, dim, kernel_size=(1, patch_size, patch_size), stride=(1, patch_size, patch_size))
        self.norm_before = nn.RMSNorm(channels * patch_size * patch_size, eps=1e-6) if dual_norm else None
        self.norm = nn.RMSNorm(dim, eps=1e-6) if dual_norm else None

    def grid(self, video: torch.Tensor) -> Grid:
        batch, channels, frames, height, width = video.shape
        p = self.patch_size
        if height % p or width % p:
            raise ValueError(f"input {height}x{width} is not a multiple of the patch size {p}")
        return frames, height // p, width // p

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        # (B, 3, T, H, W) -> (B, T, h*w, C)
        frames, rows, columns = self.grid(video)
        batch, channels = video.shape[:2]
        p = self.patch_size
        patches = video.reshape(batch, channels, frames, rows, p, columns, p)
        patches = patches.permute(0, 2, 3, 5, 4, 6, 1).reshape(batch, frames, rows * columns, p * p * channels)
        if self.norm_before is not None:
            patches = self.norm_before(patches)
        weight = self.proj.weight.permute(0, 2, 3, 4, 1).reshape(self.proj.out_channels, -1)  # matches (row, col, ch)
        tokens = F.linear(patches, weight, self.proj.bias)
        return self.norm(tokens) if self.norm is not None else tokens


@dataclass
class Features:
    tokens: torch.Tensor  # (B, 1 + K, C): CLS, then kept patch tokens in raster order
    kept: torch.Tensor | None  # (B, K) indices into the T*h*w grid, None when nothing was dropped
    grid: Grid
    layers: dict[int, torch.Tensor] = field(default_factory=dict)  # block index -> its output tokens


@dataclass(frozen=True)
class DistillHeads:
    """Modules of the Flux-UMT objective, as InternVideo2 distils: per-layer decoders of the last `layers` blocks
    to the teacher width, a final decoder of the pooled feature to the teacher's pooled width (`decoder`: 'mlp'
    = MLP_Decoder, InternVideo2's choice, or 'linear'), and a learnable position embedding of the student's grid
    (`clip_pos_embed`, sin-cos initialised, CLS row zero) added to the aligned block outputs before their
    decoders; it is resized to each input grid like `pos_embed` (InternVideo2 distils at one fixed grid)."""

    layers: int
    teacher_dim: int
    teacher_pooled_dim: int
    decoder: str = "mlp"


class FluxViT(nn.Module):
    def __init__(
        self,
        size: ModelSize,
        num_classes: int = 400,
        drop_path_rate: float = 0.0,
        head_dropout: float = 0.0,
        layer_scale: float = 1e-5,
        attention: str = "sdpa",
        selector: str = "group_dynamic_l2",
        distill: DistillHeads | None = None,
        text_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        self.num_classes = num_classes
        self.selector = build_selector(selector)
        dim = size.embed_dim
        self.patch_embed = PatchEmbed(size.patch_size, dim, dual_norm=size.dual_patch_norm)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        frames, rows, columns = size.reference_grid
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + frames * rows * columns, dim))
        self.gpe_proj = ChannelAffine(dim) if size.global_pe else None
        rates = torch.linspace(0, drop_path_rate, size.depth).tolist()
        self.blocks = nn.ModuleList(Block(size, rate, layer_scale, attention) for rate in rates)
        pooling = [AttentionPooling(dim, size.pool_heads, size.clip_dim) for _ in range(size.output_heads)]
        classifiers = [nn.Linear(size.clip_dim, num_classes) for _ in range(size.output_heads)]
        if size.output_heads == 1:  # InternVideo2 names: clip_projector.*, head.*
            self.clip_projector, self.head = pooling[0], classifiers[0]
        else:
            self.clip_projector, self.head = nn.ModuleList(pooling), nn.ModuleList(classifiers)
        self.fc_norm = nn.LayerNorm(size.clip_dim)
        self.fc_dropout = nn.Dropout(head_dropout)
        self.final_clip_decoder_for_projs = (
            nn.ModuleList(AlignmentProjector(size.clip_dim, size.clip_dim) for _ in range(size.output_heads - 1))
            if size.output_heads > 1
            else None
        )
        self.distill = distill
        if distill is not None:
            if distill.decoder not in DECODERS:
                raise ConfigError(f"distillation decoder must be one of {', '.join(DECODERS)}, got '{distill.decoder}'")
            decoder = DECODERS[distill.decoder]
            self.clip_decoder = nn.ModuleList(decoder(dim, distill.teacher_dim) for _ in range(distill.layers))
            self.final_clip_decoder = decoder(size.clip_dim, distill.teacher_pooled_dim)
            self.clip_pos_embed = nn.Parameter(torch.zeros(1, 1 + frames * rows * columns, dim))
        self.vision_proj = nn.Linear(size.clip_dim, text_dim) if text_dim else None
        self._position_cache = ResizeCache()
        self._initialise()

    # -- initialisation (as the official code) -------------------------------------------------------
    def _initialise(self) -> None:
        self.pos_embed.data[0, 1:] = sincos_3d(self.size.embed_dim, self.size.reference_grid)
        if self.distill is not None:
            self.clip_pos_embed.data[0, 1:] = sincos_3d(self.size.embed_dim, self.size.reference_grid)
        trunc_normal_(self.cls_token, std=INIT_STD, limit_in_std=INIT_LIMIT / INIT_STD)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=INIT_STD, limit_in_std=INIT_LIMIT / INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for layer_id, block in enumerate(self.blocks, start=1):
            block.attn.proj.weight.data.div_(math.sqrt(2.0 * layer_id))
            block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * layer_id))

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"} | ({"clip_pos_embed"} if self.distill is not None else set())

    # -- position embedding ---------------------------------------------------------------------------
    def position_embedding(self, grid: Grid) -> torch.Tensor:
        """(T*h*w, C) for an input grid: the reference grid through the depth-wise projection (FluxViT),
        resized (linear in time, bicubic in space); cached per grid when no gradient is recorded."""
        frames, rows, columns = self.size.reference_grid
        dim = self.size.embed_dim

        def compute() -> torch.Tensor:
            reference = self.pos_embed[0, 1:].reshape(frames, rows, columns, dim).permute(3, 0, 1, 2)  # (C, T0, H0, W0)
            if self.gpe_proj is not None:
                reference = self.gpe_proj(reference, channel_dim=0)
            return resize_grid(reference, grid).permute(1, 2, 3, 0).reshape(-1, dim)

        parameters = [self.pos_embed] + (
            [self.gpe_proj.depthwise_conv.weight, self.gpe_proj.depthwise_conv.bias] if self.gpe_proj else []
        )
        key = (grid, self.pos_embed.device, self.pos_embed.dtype)
        return self._position_cache.get(key, tuple(p._version for p in parameters), compute)

    def distill_position(self, grid: Grid, kept: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(B, 1 + K, C): `clip_pos_embed` at the CLS slot and at the kept tokens of an input grid (Flux-UMT)."""
        frames, rows, columns = self.size.reference_grid
        dim = self.size.embed_dim
        reference = self.clip_pos_embed[0, 1:].reshape(frames, rows, columns, dim).permute(3, 0, 1, 2)
        patches = resize_grid(reference, grid).permute(1, 2, 3, 0).reshape(1, -1, dim).expand(batch, -1, -1)
        if kept is not None:
            patches = patches.gather(1, kept.unsqueeze(-1).expand(-1, -1, dim))
        return torch.cat([self.clip_pos_embed[:, :1].expand(batch, -1, -1), patches], dim=1)

    # -- forward --------------------------------------------------------------------------------------
    def forward_features(
        self,
        video: torch.Tensor,
        budget: int | None = None,
        return_layers: Sequence[int] = (),
        generator: torch.Generator | None = None,
        token_reducer=None,
        kept: torch.Tensor | None = None,
    ) -> Features:
        """Patch tokens -> (selection to `budget`, or the given `kept` indices) -> blocks. `token_reducer`
        (Vid-TLDR) may merge tokens after the blocks it names; it receives each block's attention."""
        embeddings = self.embed(video)  # (B, T, L, C), post-DPN, pre-PE
        batch, frames, per_frame, dim = embeddings.shape
        grid = self.patch_embed.grid(video)
        tokens = embeddings.reshape(batch, frames * per_frame, dim) + self.position_embedding(grid)
        if kept is None and budget is not None and budget < frames * per_frame:
            if budget <= 0:
                raise ValueError(f"token budget must be positive, got {budget}")
            kept = self.selector(embeddings, budget, generator)  # (B, K)
        if kept is not None:
            tokens = tokens.gather(1, kept.unsqueeze(-1).expand(-1, -1, dim))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(batch, -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        rope = None
        if self.size.rope:
            if token_reducer is not None:
                raise ValueError("token merging moves tokens off the grid: it cannot be combined with RoPE")
            rope = rotary_tables(token_positions(grid, kept, batch, video.device), dim // self.size.num_heads)
        layers = {}
        wanted = {index % len(self.blocks) for index in return_layers}
        bias = None
        for index, block in enumerate(self.blocks):
            reduce_here = token_reducer is not None and token_reducer.applies_after(index)
            x, attention = block(x, bias, return_attention=reduce_here, rope=rope)
            if reduce_here:
                x, bias = token_reducer.reduce(index, x, attention)
            if index in wanted:
                layers[index] = x
        return Features(x, kept, grid, layers)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, T, h*w, C) patch embeddings (post-DPN, before position embedding): what the
        selector scores."""
        return self.patch_embed(video.to(self.pos_embed.dtype))

    def group_matcher(self, coarse: bool = False) -> dict:
        """Layer groups for timm's layer-wise lr decay, as the official `get_num_layer_for_vit`: the stem
        (cls_token, pos_embed, patch_embed) is layer 0, block i is i + 1, everything else the last layer
        (pooling, heads, projectors, and `gpe_proj`, which matches none of the stem's names there)."""
        return {"stem": r"^cls_token|^pos_embed|^patch_embed", "blocks": [(r"^blocks\.(\d+)", None)]}

    def _pick(self, modules, head: int):
        if isinstance(modules, nn.ModuleList):
            return modules[head]
        if head != 0:
            raise ValueError(f"{type(self).__name__} with one output head has no head {head}")
        return modules

    def pool(self, tokens: torch.Tensor, head: int = 0) -> torch.Tensor:
        """(B, N, C) -> (B, clip_dim) with attention-pooling head `head`."""
        return self._pick(self.clip_projector, head)(tokens)

    def classify(self, pooled: torch.Tensor, head: int = 0) -> torch.Tensor:
        return self._pick(self.head, head)(self.fc_dropout(self.fc_norm(pooled)))

    def forward_head(self, tokens: torch.Tensor, head: int = 0) -> torch.Tensor:
        return self.classify(self.pool(tokens, head), head)

    def align(self, pooled: torch.Tensor, projector: int) -> torch.Tensor:
        """Flux-Multi alignment: the pooled feature of a smaller budget projected (L2-normalised)."""
        if self.final_clip_decoder_for_projs is None:
            raise ValueError("this model has one output head and no alignment projectors")
        return self.final_clip_decoder_for_projs[projector](pooled)

    def forward(self, video: torch.Tensor, budget: int | None = None, head: int = 0) -> torch.Tensor:
        return self.forward_head(self.forward_features(video, budget).tokens, head)


def token_positions(grid: Grid, kept: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
    """(B, 1 + K, 3) (t, h, w) of the CLS token (the origin) and of each kept patch token."""
    frames, rows, columns = grid
    index = torch.arange(frames * rows * columns, device=device).expand(batch, -1) if kept is None else kept
    coordinates = torch.stack([index // (rows * columns), (index // columns) % rows, index % columns], dim=-1)
    return torch.cat([torch.zeros(batch, 1, 3, dtype=coordinates.dtype, device=device), coordinates], dim=1)


def build_model(name: str, **options) -> FluxViT:
    """A model of the registry by name; `options` go to FluxViT (num_classes, drop_path_rate, ...), except
    `reference_grid` and the module switches (dual_patch_norm, global_pe, local_pe, rope, output_heads), which
    override the size's."""
    if name not in SIZES:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(SIZES)}")
    switches = {key: options.pop(key) for key in SIZE_OVERRIDES if key in options}
    if "reference_grid" in switches:
        switches["reference_grid"] = tuple(switches["reference_grid"])
    return FluxViT(replace(SIZES[name], **switches), **options)


SIZE_OVERRIDES = ("reference_grid", "dual_patch_norm", "global_pe", "local_pe", "rope", "output_heads")
