"""Language models for the chat-centric evaluation (main Table 10): one interface, a tiny causal LM the embedded
default trains itself, and an adapter for a frozen Hugging Face causal LM on local disk (paper scale).

The paper names neither its LLM nor its projector (paper.md §2.7). Both are frozen in its "linear probe" setting,
so all the chat model asks of a language model is: token ids of a text, the input embeddings of ids, and
next-token logits of a sequence of embeddings (visual embeddings first, then text).

* :class:`TinyCausalLM` (embedded default): a small pre-norm GPT-style decoder over :class:`WordTokenizer` (the
  synthetic texts come from a closed vocabulary); ``[CLS]`` serves as begin-of-sequence and ``[SEP]`` as its end.
  Trained by flux.train.language on the chat data's captions and question/answer text, then frozen.
* :class:`HuggingFaceCausalLM` (paper scale): any ``transformers`` causal LM folder (``chat.llm`` of
  config/paper.yaml), with its own tokenizer; never downloads.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flux.errors import ConfigError
from flux.models.initialisation import trunc_normal_
from flux.models.text import CLS_ID, PAD_ID, SEP_ID, WordTokenizer, _Block, _import_transformers, check_transformer_sizes


class CausalLM(nn.Module, abc.ABC):
    """What the chat model relies on. Ids and embeddings are always batch-first; padding is on the right."""

    embed_dim: int
    bos_id: int | None  # prepended to every sequence (None: the model has no begin-of-sequence token)
    eos_id: int
    pad_id: int

    @abc.abstractmethod
    def text_ids(self, text: str) -> list[int]:
        """Ids of a text, no special tokens."""

    @abc.abstractmethod
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) ids -> (N, L, embed_dim) input embeddings."""

    @abc.abstractmethod
    def logits(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(N, L, embed_dim) embeddings, (N, L) mask (1 on real positions) -> (N, L, vocab) next-token logits."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated ids (special tokens dropped)."""

    def continuation_ids(self, prefix: str, continuation: str) -> list[int]:
        """The ids `continuation` adds after `prefix`: a subword tokenizer may spell "A" after "(" otherwise
        than alone, so an option letter is looked up in context."""
        before, after = self.text_ids(prefix), self.text_ids(prefix + continuation)
        common = 0
        while common < min(len(before), len(after)) and before[common] == after[common]:
            common += 1
        added = after[common:]
        if not added:
            raise ConfigError(f"the language model's tokenizer gives no tokens for {continuation!r} after {prefix[-20:]!r}")
        return added

    @property
    def device(self) -> torch.device:
        for parameter in self.parameters():
            return parameter.device
        return torch.device("cpu")


# --------------------------------------------------------------------------------------------------------------
# Tiny causal LM (embedded default)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyLMConfig:
    vocab_size: int
    embed_dim: int = 128
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    max_length: int = 192  # visual embeddings + prompt + answer

    def __post_init__(self) -> None:
        check_transformer_sizes(self, "chat.tiny_llm")


class TinyCausalLM(CausalLM):
    """Token + learned position embeddings, `depth` pre-norm blocks under a causal mask, final LayerNorm, output
    layer tied to the token embedding."""

    def __init__(self, config: TinyLMConfig, tokenizer: WordTokenizer, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if tokenizer.vocab_size > config.vocab_size:
            raise ConfigError(f"chat.tiny_llm.vocab_size ({config.vocab_size}) is below the tokenizer's {tokenizer.vocab_size}")
        self.config, self.tokenizer = config, tokenizer
        self.embed_dim = config.embed_dim
        self.bos_id, self.eos_id, self.pad_id = CLS_ID, SEP_ID, PAD_ID
        self.token_embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.max_length, config.embed_dim))
        self.blocks = nn.ModuleList(
            _Block(config.embed_dim, config.num_heads, config.mlp_ratio, 0.0) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.embed_dim)
        with torch.no_grad():
            for parameter in (self.token_embed.weight, self.pos_embed):
                trunc_normal_(parameter, std=0.02, limit_in_std=2.0, generator=generator)
            for module in self.blocks.modules():
                if isinstance(module, nn.Linear):
                    trunc_normal_(module.weight, std=0.02, limit_in_std=2.0, generator=generator)
                    nn.init.zeros_(module.bias)

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer.token_ids(text)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.token_embed(ids)

    def logits(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = embeds.shape[1]
        if length > self.config.max_length:
            raise ConfigError(
                f"a chat sequence of {length} positions exceeds chat.tiny_llm.max_length={self.config.max_length}; "
                "raise it (and retrain the tiny LM) or give fewer visual tokens"
            )
        causal = torch.ones(length, length, dtype=torch.bool, device=embeds.device).tril()
        mask = causal[None, None] & attention_mask.bool()[:, None, None, :]
        mask = mask | torch.eye(length, dtype=torch.bool, device=embeds.device)[None, None]  # padded rows see themselves
        x = embeds + self.pos_embed[:, :length]
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x) @ self.token_embed.weight.T

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"config": dataclasses.asdict(self.config), "tokenizer": self.tokenizer.to_dict(), "state": self.state_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TinyCausalLM:
        model = cls(TinyLMConfig(**data["config"]), WordTokenizer.from_dict(data["tokenizer"]))
        model.load_state_dict(data["state"])
        return model


# --------------------------------------------------------------------------------------------------------------
# Hugging Face causal LM (paper scale)
# --------------------------------------------------------------------------------------------------------------


class HuggingFaceCausalLM(CausalLM):
    """A frozen ``transformers`` causal LM from a local folder (``AutoModelForCausalLM``), with its own tokenizer."""

    def __init__(self, path: str | Path, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            what = "does not exist" if not path.exists() else "has no config.json"
            raise ConfigError(
                f"chat.llm: {path} {what}; put a Hugging Face causal LM folder there (config.json, weights, tokenizer "
                "files): `dvc pull` it, or point chat.llm of the configuration at such a folder"
            )
        transformers = _import_transformers()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(f"chat.llm: {path} is not a loadable causal LM folder ({error})") from None
        self.path = path
        self.embed_dim = int(self.model.get_input_embeddings().embedding_dim)
        self.bos_id = self.tokenizer.bos_token_id
        if self.tokenizer.eos_token_id is None:
            raise ConfigError(f"chat.llm: the tokenizer of {path} has no end-of-sequence token")
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id)

    def text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def logits(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask.long()).logits

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}"
