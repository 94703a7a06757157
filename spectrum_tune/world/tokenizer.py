"""The tiny world's tokenizer: byte-level BPE in which every integer 0..999 is one token."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .corpus import CHAT_TEMPLATE, IM_END, IM_START, PAD_TOKEN, SPECIAL_TOKENS, TinyConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

_SPECIAL_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def _number_merges() -> list[tuple[str, str]]:
    """BPE merges that make every integer 0..999 (no leading zeros) exactly one token.

    Each digit run is its own pre-token (at most three digits). For ``abc`` either ``ab`` or
    ``bc`` merges first, depending on ranks, so ``(ab, c)`` is always provided and ``(a, bc)``
    whenever ``bc`` is itself a number; ``a0c`` has no ``0c`` token and always goes via ``a0``.
    """
    merges = [(str(a), str(b)) for a in range(1, 10) for b in range(10)]
    for n in range(100, 1000):
        s = str(n)
        merges.append((s[:2], s[2]))
        if s[1] != "0":
            merges.append((s[0], s[1:]))
    return merges


def _is_digits(token: str) -> bool:
    return token.isascii() and token.isdigit()


def build_tokenizer(corpus: Sequence[str], config: TinyConfig = TinyConfig()) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE on ``corpus`` and wrap it as a ``PreTrainedTokenizerFast``.

    Digit runs are split off before byte-level pre-tokenization and get hand-made merges (see
    :func:`_number_merges`), so numbers tokenize the same wherever they stand; the trained merges
    cover everything else. Specials: ``<|pad|>`` (0), ``<|im_start|>`` (1), ``<|im_end|>`` (2, eos).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\d{1,3}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=config.bpe_vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # special tokens are split off before pre-tokenization at encode time, so train without them
    pieces = (p for doc in corpus for p in _SPECIAL_RE.split(doc) if p)
    trained.train_from_iterator(pieces, trainer)
    learned = json.loads(trained.to_str())["model"]

    # rebuild: specials first, then the trained non-digit vocab, then every number 0..999
    tokens = list(SPECIAL_TOKENS)
    tokens += [
        t
        for t, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1])
        if not (_is_digits(t) and len(t) > 1)
    ]
    tokens += [str(n) for n in range(10, 1000)]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    # merges serialise as [a, b] pairs (or "a b" strings in older tokenizers versions)
    trained_merges = [m.split(" ") if isinstance(m, str) else m for m in learned["merges"]]
    merges = _number_merges() + [(a, b) for a, b in trained_merges if not (_is_digits(a) or _is_digits(b))]

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=config.max_positions,
    )
