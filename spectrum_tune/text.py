"""Text normalisation shared by training (reference checks) and evaluation (answer matching).

At the bottom layer (imports nothing of ours) so that training can check references with the
very normalisation the eval uses without importing the evaluation package.
"""

from __future__ import annotations

__all__ = ["normalize_answer"]

_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb"
_SENTENCE_PUNCT = ".!?"


def normalize_answer(text: str) -> str:
    """Canonical form used to match a generated answer against answers or a valid set.

    Steps, in order:

    1. strip surrounding whitespace;
    2. keep only the first line (cut at the first line break);
    3. repeatedly strip trailing sentence punctuation (``. ! ?``), surrounding quotes
       (straight, curly, backtick, guillemets) and whitespace until nothing changes, so
       ``'"Paris."'`` and ``'Paris".'`` both become ``Paris``;
    4. collapse runs of inner whitespace to one space;
    5. casefold (``"Straße"`` -> ``"strasse"``).

    The function is idempotent. Quotes are stripped at both ends, so a trailing
    apostrophe (``dogs'``) is lost too.
    """
    text = text.strip()
    lines = text.splitlines()
    text = lines[0] if lines else ""
    previous = None
    while text != previous:
        previous = text
        text = text.strip().rstrip(_SENTENCE_PUNCT).strip(_QUOTES)
    return " ".join(text.split()).casefold()
