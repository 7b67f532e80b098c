"""The character folding of `models.text.standardize`, in plain Python (no TensorFlow).

`fold` says what one character becomes; `models.text` builds its TensorFlow table from it, and
`standardized` applies the same mapping to one Python string, for code that must match words
without loading TensorFlow (reading a vectors file, `search.data.vectors`).
"""

from __future__ import annotations

import functools
import re
import unicodedata

APOSTROPHES = "'’‘ʼ`´"
WORD_BREAKS = "\u200b"
"""Format characters that separate words (the zero-width space); the others are dropped."""
HTML_TAG = r"<[^<>]{0,100}>"
LAST_CODE = 0xFFFF
"""The last code point of the Basic Multilingual Plane: characters beyond it become spaces."""


def fold(char: str) -> str:
    """What one character becomes: "" (dropped), " " (a word break) or its folded letters."""
    category = unicodedata.category(char)
    if char in WORD_BREAKS:
        return " "
    if category[0] == "M" or category == "Cf" or char in APOSTROPHES:
        return ""
    if category[0] in "PSZ" or category in ("Cc", "Cs", "Co", "Cn"):
        return " "
    letters = []
    for part in unicodedata.normalize("NFKD", char).casefold():
        kind = unicodedata.category(part)
        if kind[0] != "M":
            letters.append(" " if kind[0] in "PSZ" else part)
    return "".join(letters)


class _FoldMap(dict):
    """`str.translate`'s table: fold() of every Basic Multilingual Plane code point, a space for
    every code point beyond it."""

    def __missing__(self, code: int) -> str:
        return " "


@functools.cache
def _fold_map() -> _FoldMap:
    return _FoldMap((code, fold(chr(code))) for code in range(LAST_CODE + 1))


def standardized(text: str) -> str:
    """`text` as `models.text.standardize` makes it (HTML tags become spaces, then every character
    folded), its words joined by one space: "Café <br />FILM" → "cafe film"."""
    if text.isascii() and text.isalnum():  # most words of a vectors file: nothing to fold but case
        return text.lower()
    if "<" in text:
        text = re.sub(HTML_TAG, " ", text)
    return " ".join(text.translate(_fold_map()).split())
