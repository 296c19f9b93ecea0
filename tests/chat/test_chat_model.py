"""The chat model's scoring, decoding and training pieces, on constructed language models whose numbers are hand-
computed, and the offline DREAM-1K F1."""

import math
import re

import pytest
import torch

from flux.eval import caption_f1
from flux.models.chat import ChatModel, Projector
from flux.models.llm import CausalLM, TinyCausalLM, TinyLMConfig
from flux.models.text import WordTokenizer
from flux.train.language import Document, documents, train_tiny_lm

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "best", "option", ":", "(", "a", "b", ")", "red", "blue"]
# next-token probabilities after a token (rows not listed: uniform)
BIGRAMS = {
    "(": {"a": 0.3, "b": 0.7},
    "a": {")": 1.0},
    "b": {")": 1.0},
    ")": {"red": 0.9, "blue": 0.1},
    "red": {"[SEP]": 1.0},
    "blue": {"[SEP]": 1.0},
}


class BigramLM(CausalLM):
    """Next-token log-probabilities that depend on the current token only; embeddings are one-hot ids (a visual
    embedding of zeros reads as [PAD])."""

    def __init__(self):
        super().__init__()
        self.embed_dim, self.bos_id, self.eos_id, self.pad_id = len(VOCAB), 2, 3, 0
        table = torch.full((len(VOCAB), len(VOCAB)), 1 / len(VOCAB))
        for token, following in BIGRAMS.items():
            table[VOCAB.index(token)] = 1e-12
            for name, p in following.items():
                table[VOCAB.index(token), VOCAB.index(name)] = p
        self.register_buffer("table", table.log())

    def text_ids(self, text):
        return [VOCAB.index(token) if token in VOCAB else 1 for token in re.findall(r"\w+|[^\w\s]", text.lower())]

    def embed(self, ids):
        return torch.nn.functional.one_hot(ids, len(VOCAB)).float()

    def logits(self, embeds, attention_mask):
        return self.table[embeds.argmax(-1)]

    def decode(self, ids):
        return " ".join(VOCAB[i] for i in ids)


class NoEncoder(torch.nn.Module):
    pass


def chat_with(llm):
    return ChatModel(NoEncoder(), Projector(4, llm.embed_dim), llm)


def test_option_scoring_picks_the_answer_text_with_the_highest_likelihood():
    chat = chat_with(BigramLM())
    visual = torch.zeros(2, 2, len(VOCAB))
    scores = chat.answer_log_likelihoods(visual, ["Best option:("] * 2, ["A) red", "B) blue"])
    # A) red: 0.3 x 1 x 0.9 x 1 = 0.27; B) blue: 0.7 x 1 x 0.1 x 1 = 0.07 (the likelier letter loses on its text)
    assert scores.tolist() == pytest.approx([math.log(0.27), math.log(0.07)], abs=1e-5)
    assert int(scores.argmax()) == 0


def test_greedy_decoding_follows_the_likeliest_token_to_the_end():
    chat = chat_with(BigramLM())
    assert chat.generate(torch.zeros(2, 1, len(VOCAB)), ["Best option:(", "red"], max_new_tokens=5) == ["b ) red", ""]
    assert chat.generate(torch.zeros(1, 1, len(VOCAB)), ["Best option:("], max_new_tokens=2) == ["b )"]


def test_the_loss_reads_the_answer_and_end_tokens_only():
    chat = chat_with(BigramLM())
    visual = torch.zeros(1, 3, len(VOCAB))
    embeds, mask, labels, last = chat.sequences(visual, ["Best option:("], ["A) red"])
    assert mask.tolist() == [[1] * 12] and int(last) == 11  # bos, 3 visual, 4 prompt, 3 answer, end
    assert [VOCAB[i] for i in labels[0].tolist() if i >= 0] == ["a", ")", "red", "[SEP]"]
    assert embeds[0, 1:4].abs().sum() == 0  # the visual embeddings sit after the begin token
    assert float(chat.loss(visual, ["Best option:("], ["A) red"])) == pytest.approx(-math.log(0.27) / 4, abs=1e-5)


def tiny_lm(seed=0):
    tokenizer = WordTokenizer.build(["a red circle moves left", "a blue square"])
    return TinyCausalLM(
        TinyLMConfig(vocab_size=tokenizer.vocab_size, embed_dim=16, depth=1, num_heads=2, max_length=16),
        tokenizer,
        torch.Generator().manual_seed(seed),
    )


def test_the_tiny_lm_is_causal_and_ignores_padding():
    model = tiny_lm()
    ids = torch.tensor([[2, 4, 5, 6, 7], [2, 4, 5, 9, 9]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    logits = model.logits(model.embed(ids), mask)
    assert torch.allclose(logits[0, :3], logits[1, :3], atol=1e-6)  # later tokens and padding change nothing before them


def test_the_tiny_lm_learns_its_documents_and_comes_back_frozen():
    found = [Document("a red circle", "Describe the video in detail.\n", "a red circle moves left")] * 4
    config = {"embed_dim": 32, "depth": 1, "num_heads": 2, "max_length": 32}
    model, losses = train_tiny_lm(found, config, seed=0, epochs=30, batch_size=4, lr=1e-2)
    again, same = train_tiny_lm(found, config, seed=0, epochs=30, batch_size=4, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0] and losses == same
    assert not any(p.requires_grad for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    restored = TinyCausalLM.from_dict(model.to_dict())
    ids = torch.tensor([[2, 5, 6]])
    assert torch.equal(
        restored.logits(restored.embed(ids), torch.ones_like(ids)), model.logits(model.embed(ids), torch.ones_like(ids))
    )


def test_documents_put_a_caption_in_the_videos_place():
    turns = [{"i": "", "q": "Describe the video in detail.", "a": "cap one"}, {"i": "sys ", "q": "Q?", "a": "Best option:(A) x"}]
    assert documents([turns, [{"i": "", "q": "Q?", "a": "no caption: no document"}]]) == [
        Document("cap one", "Describe the video in detail.\n", "cap one"),
        Document("cap one", "sys Q?\n", "Best option:(A) x"),
    ]


def test_dream_f1_counts_events_as_autodq_aggregates_them():
    reference = "The red square moves left. The red square rotates clockwise."
    events = ["The red square moves left.", "The red square rotates clockwise."]
    # prediction clauses: "the red square moves left" (the reference has all 4 content words), "it spins round" (0 of 2)
    prediction = "the red square moves left, then it spins round"
    assert caption_f1.events(prediction) == ["the red square moves left", "it spins round"]
    scores = caption_f1.video_scores(prediction, reference, events)
    # recall: event 1 is covered (red, square, move, left: 4 of 4); event 2 (red, square, rotate, clockwise) 2 of 4 >= 0.5
    assert scores == {"recall": 1.0, "precision": 0.5}
    empty = caption_f1.video_scores("", reference, events)
    assert empty == {"recall": 0.0, "precision": 1.0}
    overall = caption_f1.aggregate([scores, empty, {"recall": 1.0, "precision": 1.0}], ["s1", "s1", "s2"])
    # s1: recall 0.5, precision 0.75; s2: 1, 1 -> recall 0.75, precision 0.875, F1 = 2 x 0.75 x 0.875 / 1.625
    assert overall == {"f1": round(100 * 2 * 0.75 * 0.875 / 1.625, 4), "recall": 75.0, "precision": 87.5}


def test_a_local_hugging_face_causal_lm_reads_visual_embeddings(tmp_path):
    """The paper-scale path (chat.llm): a Hugging Face causal LM folder, built here with a word-level tokenizer and a
    one-layer GPT-2, read without network."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    words = ["<|endoftext|>", "best", "option", ":", "(", "a", "b", ")", "red", "blue"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<|endoftext|>"))
    words_then_marks = pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), behavior="isolated")
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), words_then_marks])
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    config = transformers.GPT2Config(
        vocab_size=len(words), n_positions=32, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    from flux.models.llm import HuggingFaceCausalLM

    llm = HuggingFaceCausalLM(tmp_path).eval()
    assert llm.embed_dim == 16 and llm.eos_id == llm.bos_id == 0
    assert llm.continuation_ids("best option:(", "a) red") == [words.index(w) for w in ("a", ")", "red")]
    chat = chat_with(llm)
    visual = torch.randn(1, 3, 16)
    scores = chat.answer_log_likelihoods(visual.expand(2, -1, -1), ["best option:("] * 2, ["a) red", "b) blue"])
    embeds, mask, labels, _ = chat.sequences(visual.expand(2, -1, -1), ["best option:("] * 2, ["a) red", "b) blue"])
    logits = llm.logits(embeds, mask)[:, :-1].log_softmax(-1)
    by_hand = [
        float(sum(logits[row, t - 1, labels[row, t]] for t in range(1, labels.shape[1]) if labels[row, t] >= 0))
        for row in range(2)
    ]
    assert scores.tolist() == pytest.approx(by_hand, abs=1e-5)
    with pytest.raises(Exception, match="has no config.json|does not exist"):
        HuggingFaceCausalLM(tmp_path / "missing")


def test_multiple_choice_cells_carry_their_per_question_outcomes():
    from flux.tables.cells import item_outcomes

    assert item_outcomes({"accuracy": 50.0, "accuracy_hits": "1001"}, "accuracy").tolist() == [1.0, 0.0, 0.0, 1.0]
    assert item_outcomes({"f1": 12.5}, "f1") is None  # an F1 of per-subset means has no per-video outcome
