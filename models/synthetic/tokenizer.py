"""Offline T5-family tokenizers with a generated vocabulary of the text encoder's size (the real size at full scale).

The real sentencepiece models (umT5: 256384 pieces, T5: 32128) cannot be fetched here, and their text does not
matter for random weights; what matters is the vocabulary size (it sizes the embedding) and that any prompt
gives ids that vary with its text. A WordPiece model over single characters does that: every ASCII word splits
into known pieces (`npc` -> `n`, `##p`, `##c`), other words become `<unk>`. Generated filler pieces bring the
vocabulary to its real size. Like T5's tokenizers it appends `</s>` and pads with `<pad>` (id 0).
"""

from __future__ import annotations

import string
from typing import Any

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5 and umT5
_CHARACTERS = string.ascii_lowercase + string.digits + string.punctuation


def _vocabulary(size: int) -> dict[str, int]:
    pieces = [*SPECIAL_TOKENS, *_CHARACTERS, *(f"##{char}" for char in _CHARACTERS)]
    if size < len(pieces):
        raise ValueError(f"tokenizer vocabulary size {size} is below the {len(pieces)} pieces it needs")
    pieces.extend(f"<extra_{index}>" for index in range(size - len(pieces)))
    return {piece: index for index, piece in enumerate(pieces)}


def build_tokenizer(vocab_size: int, model_max_length: int) -> Any:
    """A `PreTrainedTokenizerFast` of exactly `vocab_size` ids; it survives save_pretrained/from_pretrained."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(
        models.WordPiece(vocab=_vocabulary(vocab_size), unk_token="<unk>", continuing_subword_prefix="##")
    )
    backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )
