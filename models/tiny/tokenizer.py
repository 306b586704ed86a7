"""An in-memory word-level tokenizer: T5's sentencepiece model cannot be fetched offline."""

from __future__ import annotations

from typing import Any

TINY_VOCAB_WORDS = 200
TINY_VOCAB_SIZE = TINY_VOCAB_WORDS + 3


def build_tokenizer() -> Any:
    """A `PreTrainedTokenizerFast` over a WordLevel model; it survives save_pretrained/from_pretrained."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for index in range(TINY_VOCAB_WORDS):
        vocab[f"w{index}"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_t5_config(config_class: Any, d_model: int) -> Any:
    """A one-layer (U)T5 encoder config whose vocabulary covers the tiny tokenizer; d_model = the text dim."""
    return config_class(
        vocab_size=TINY_VOCAB_SIZE,
        d_model=d_model,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
    )
