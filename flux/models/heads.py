"""Heads: attention pooling (FluxViT keeps three, one per token budget), alignment projectors, distillation
decoders.

Module and parameter names follow the official checkpoints (`clip_projector.i.norm1_q`, `cross_attn.q`,
`cross_attn.q_bias`, `final_clip_decoder_for_projs.i.head` ...), so their state dicts load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttention(nn.Module):
    """Multi-head cross-attention with separate q/k/v projections and (optional) separate biases."""

    def __init__(self, dim: int, num_heads: int, out_dim: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention pooling: width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.k_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.k_bias = self.v_bias = None
        self.proj = nn.Linear(dim, out_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        return x.reshape(batch, tokens, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        # query (B, Nq, C), key/value (B, N, C) -> (B, Nq, out_dim)
        q = self._heads(F.linear(query, self.q.weight, self.q_bias))
        k = self._heads(F.linear(key, self.k.weight, self.k_bias))
        v = self._heads(F.linear(value, self.v.weight, self.v_bias))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, Nq, d)
        return self.proj(out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1))


class AttentionPooling(nn.Module):
    """One query, the mean of all tokens (CLS included), attending to every token (official
    AttentionPoolingBlock: separate LayerNorms on q, k and v)."""

    def __init__(self, dim: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.norm1_q = nn.LayerNorm(dim, eps=1e-5)
        self.norm1_k = nn.LayerNorm(dim, eps=1e-5)
        self.norm1_v = nn.LayerNorm(dim, eps=1e-5)
        self.cross_attn = CrossAttention(dim, num_heads, out_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # (B, N, C) -> (B, out_dim)
        query = self.norm1_q(tokens.mean(dim=1, keepdim=True))
        return self.cross_attn(query, self.norm1_k(tokens), self.norm1_v(tokens)).squeeze(1)


class AlignmentProjector(nn.Module):
    """Linear -> LayerNorm -> L2 normalisation (official `Linear_Decoder`): used to align features of
    different budgets (Flux-Multi) and student features to a teacher's (Flux-UMT)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(in_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim, eps=1e-5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.norm(self.head(features)), dim=-1)


class MLPDecoder(nn.Module):
    """Linear -> GELU -> Linear -> LayerNorm -> L2 normalisation (InternVideo2's `MLP_Decoder`, which its S14/B14
    distillation scripts select): maps student features into a teacher's feature space (Flux-UMT)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))
        self.norm = nn.LayerNorm(out_dim, eps=1e-5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.norm(self.head(features)), dim=-1)


DECODERS = {"mlp": MLPDecoder, "linear": AlignmentProjector}  # InternVideo2's MLP_Decoder / Linear_Decoder
