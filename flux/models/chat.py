"""The chat model of main Table 10: a frozen video encoder, a trained projector, a frozen causal LM (the paper's
"linear probe" setting, paper.md §2.7).

The LLM reads [begin-of-sequence] [visual embeddings] [prompt] [answer]: the visual embeddings are the encoder's
kept patch tokens (its #Tokens: 2048 at 8 x 256, or the Token Optimization input cut to a budget), each mapped by
the projector into the LLM's embedding space. The paper names no projector; a LLaVA-1.5-style two-layer MLP over
every visual token is used [I] (VideoChat2 compresses with a QFormer first, which a linear probe would train
too, and which would hide the token counts the table varies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flux.errors import ConfigError
from flux.models.fluxvit import FluxViT
from flux.models.llm import CausalLM, HuggingFaceCausalLM, TinyCausalLM

IGNORE = -100  # label of positions the loss skips (visual embeddings, prompt, padding)


PROJECTORS = ("mlp", "linear")  # `chat.projector`: LLaVA-1.5's two-layer MLP, or one linear map


class Projector(nn.Module):
    """Encoder width -> LLM width, per visual token: linear, GELU, linear (`mlp`) or one linear map (`linear`)."""

    def __init__(self, vision_dim: int, llm_dim: int, kind: str = "mlp") -> None:
        super().__init__()
        if kind not in PROJECTORS:
            raise ConfigError(f"chat.projector: '{kind}' is not one of {PROJECTORS}")
        self.vision_dim, self.llm_dim, self.kind = vision_dim, llm_dim, kind
        hidden = [nn.Linear(vision_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim)]
        self.layers = nn.Sequential(*(hidden if kind == "mlp" else hidden[:1]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.layers(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "vision_dim": self.vision_dim, "llm_dim": self.llm_dim, "state": self.state_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Projector:
        projector = cls(data["vision_dim"], data["llm_dim"], data["kind"])
        projector.load_state_dict(data["state"])
        return projector


def llm_record(llm: CausalLM) -> dict[str, Any]:
    """How a checkpoint names its LLM: the tiny one whole (small, trained here), a Hugging Face one by its folder."""
    if isinstance(llm, TinyCausalLM):
        return {"tiny": llm.to_dict()}
    return {"path": str(llm.path)}


def load_llm(record: Mapping[str, Any]) -> CausalLM:
    if "tiny" in record:
        return TinyCausalLM.from_dict(record["tiny"]).eval().requires_grad_(False)
    return HuggingFaceCausalLM(record["path"]).eval().requires_grad_(False)


def llm_from_path(path: str | Path) -> CausalLM:
    """`chat.llm`: a Hugging Face causal LM folder, or the tiny LM file `flux llm` wrote."""
    path = Path(path)
    if path.is_dir():
        return load_llm({"path": str(path)})
    if not path.is_file():
        raise ConfigError(f"chat.llm: {path} does not exist; build it (snakemake {path}) or point chat.llm at an LLM folder")
    return load_llm(torch.load(path, map_location="cpu", weights_only=False)["llm"])


class ChatModel(nn.Module):
    def __init__(self, encoder: FluxViT, projector: Projector, llm: CausalLM) -> None:
        super().__init__()
        self.encoder, self.projector, self.llm = encoder, projector, llm

    def visual(self, video: torch.Tensor, budget: int | None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, K, llm_dim): the K patch tokens the frozen encoder keeps at `budget` (None: all), projected."""
        with torch.no_grad():
            tokens = self.encoder.forward_features(video, budget, generator=generator).tokens[:, 1:]
        return self.projector(tokens.to(self.projector.layers[0].weight.dtype))

    def sequences(
        self,
        visual: torch.Tensor,
        prompts: Sequence[str],
        answers: Sequence[str] | None = None,
        generated: Sequence[Sequence[int]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embeddings (N, L, D), mask (N, L), labels (N, L) (the answer's ids and the end token; IGNORE elsewhere)
        and each row's last real position, right-padded; `generated`: ids decoded so far, after the prompt."""
        llm = self.llm
        rows = []
        for position, prompt in enumerate(prompts):
            head = [llm.bos_id] if llm.bos_id is not None else []
            prompt_ids = llm.text_ids(prompt) + (list(generated[position]) if generated is not None else [])
            answer_ids = []
            if answers is not None:
                answer_ids = llm.continuation_ids(prompt, answers[position]) + [llm.eos_id]
            rows.append((head, prompt_ids, answer_ids))
        visual_length = visual.shape[1]
        length = max(len(h) + visual_length + len(p) + len(a) for h, p, a in rows)
        device = visual.device
        ids = torch.full((len(rows), length), llm.pad_id, dtype=torch.long, device=device)
        labels = torch.full((len(rows), length), IGNORE, dtype=torch.long, device=device)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        is_visual = torch.zeros(len(rows), length, dtype=torch.bool, device=device)
        last = []
        for row, (head, prompt_ids, answer_ids) in enumerate(rows):
            text_start = len(head) + visual_length
            ids[row, : len(head)] = torch.tensor(head, dtype=torch.long)
            is_visual[row, len(head) : text_start] = True
            tail = prompt_ids + answer_ids
            ids[row, text_start : text_start + len(tail)] = torch.tensor(tail, dtype=torch.long)
            end_position = text_start + len(tail)
            mask[row, :end_position] = 1
            if answer_ids:
                labels[row, end_position - len(answer_ids) : end_position] = torch.tensor(answer_ids, dtype=torch.long)
            last.append(end_position - 1)
        embeds = llm.embed(ids)
        embeds = embeds.masked_scatter(is_visual[..., None], visual.to(embeds.dtype))
        return embeds, mask, labels, torch.tensor(last, device=device)

    def loss(self, visual: torch.Tensor, prompts: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
        """Next-token cross-entropy on the answers' tokens (and their end token)."""
        embeds, mask, labels, _ = self.sequences(visual, prompts, answers)
        logits = self.llm.logits(embeds, mask)[:, :-1]
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=IGNORE
        )

    def next_token_logits(
        self, visual: torch.Tensor, prompts: Sequence[str], generated: Sequence[Sequence[int]] | None = None
    ) -> torch.Tensor:
        """(N, vocab): the LLM's scores for the token after each prompt (and what was generated after it)."""
        embeds, mask, _, last = self.sequences(visual, prompts, generated=generated)
        logits = self.llm.logits(embeds, mask)
        return logits[torch.arange(len(prompts), device=logits.device), last].float()

    def answer_log_likelihoods(self, visual: torch.Tensor, prompts: Sequence[str], answers: Sequence[str]) -> torch.Tensor:
        """(N,): log p(answer, end | video, prompt) of each row, summed over the answer's tokens."""
        embeds, mask, labels, _ = self.sequences(visual, prompts, answers)
        logits = self.llm.logits(embeds, mask)[:, :-1].float()
        targets = labels[:, 1:]
        picked = torch.gather(logits.log_softmax(-1), 2, targets.clamp(min=0)[..., None])[..., 0]
        return (picked * (targets != IGNORE)).sum(dim=1)

    @torch.no_grad()
    def generate(self, visual: torch.Tensor, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Greedy decoding (Tarsier's DREAM-1K setting: temperature 0), until the end token or `max_new_tokens`;
        the whole sequence is recomputed each step (no key-value cache: tiny models, or patience)."""
        generated: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)
        for _ in range(max_new_tokens):
            if all(done):
                break
            next_ids = self.next_token_logits(visual, prompts, generated).argmax(dim=-1).tolist()
            for row, token in enumerate(next_ids):
                if done[row]:
                    continue
                if token == self.llm.eos_id:
                    done[row] = True
                else:
                    generated[row].append(token)
        return [self.llm.decode(ids) for ids in generated]
