"""The offline T5-family tokenizers: real vocabulary sizes, text-dependent ids, T5's special tokens."""

from __future__ import annotations

import pytest

from models.synthetic.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def umt5():
    return build_tokenizer(256_384, 512)


def test_vocabulary_has_the_real_size_and_t5s_special_ids(umt5):
    assert len(umt5) == umt5.vocab_size == 256_384
    assert (umt5.pad_token_id, umt5.eos_token_id, umt5.unk_token_id) == (0, 1, 2)
    assert len(build_tokenizer(32_128, 226)) == 32_128


def test_ids_follow_the_text_end_with_eos_and_pad_to_the_max_length(umt5):
    first = umt5("Mira giggles", padding="max_length", max_length=16, truncation=True).input_ids
    other = umt5("Mira frowns", padding="max_length", max_length=16, truncation=True).input_ids
    assert len(first) == 16 and first != other
    assert first[: first.index(1) + 1][-1] == 1 and set(first[first.index(1) + 1 :]) == {0}
    assert max(first) < umt5.vocab_size


def test_words_it_cannot_spell_become_unk(umt5):
    assert umt5("ünï", add_special_tokens=False).input_ids == [2]


def test_a_vocabulary_too_small_for_its_pieces_is_refused():
    with pytest.raises(ValueError, match="tokenizer vocabulary size 10 is below the 139 pieces it needs"):
        build_tokenizer(10, 16)
