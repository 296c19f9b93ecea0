"""Zero-shot classification with prompt templates (../shared/reference/protocols.md §7).

Two ensembles, the choice recorded with the result since they differ by a per-class norm factor:
`embedding` (open_clip): normalise each prompt's text embedding, average over templates, renormalise, then
cosine with the video; `score` (InternVideo2): cosine with every prompt, averaged over templates. Class
order is the label map's, never a set's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from flux.errors import ConfigError, FluxError

ENSEMBLES = ("embedding", "score")


def prompt_embeddings(
    encode: Callable[[list[str]], torch.Tensor], class_names: Sequence[str], templates: Sequence[str]
) -> torch.Tensor:
    """(classes, templates, dim) normalised text embeddings of every `template.format(class name)`."""
    if not templates or any("{}" not in template for template in templates):
        raise ConfigError(f"prompt templates must each contain '{{}}' for the class name; got {list(templates)}")
    prompts = [template.format(name) for name in class_names for template in templates]
    embedded = encode(prompts)
    if embedded.shape[0] != len(prompts):
        raise FluxError(f"the text encoder returned {embedded.shape[0]} embeddings for {len(prompts)} prompts")
    return F.normalize(embedded.double(), dim=-1).reshape(len(class_names), len(templates), -1)


def zero_shot_scores(video_features: torch.Tensor, prompts: torch.Tensor, ensemble: str = "embedding") -> torch.Tensor:
    """(videos, classes) scores from video features (videos, dim) and prompt embeddings (classes, templates, dim)."""
    videos = F.normalize(video_features.double(), dim=-1)
    if ensemble == "embedding":
        return videos @ F.normalize(prompts.mean(dim=1), dim=-1).T
    if ensemble == "score":
        return torch.einsum("vd,ctd->vct", videos, prompts).mean(dim=-1)
    raise ConfigError(f"unknown prompt ensemble '{ensemble}'; known: {', '.join(ENSEMBLES)}")
