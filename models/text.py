"""One standardization of review text: used to build the vocabulary and inside the exported model.

`standardize` is a registered Keras function, so a `TextVectorization` that uses it saves
and loads with `safe_mode=True`, and it runs as TensorFlow ops (inside a SavedModel too).
It turns any string into space-separated lower-case words, the same way for every
spelling of them:

- HTML tags (`<br />` and the like, in most IMDB reviews) become spaces;
- every character is mapped through one table built from Unicode's own data
  (`unicodedata`): compatibility forms are decomposed (NFKD: "ﬁ" → "fi", full-width
  "ｆｉｌｍ" → "film", "½" → "1 2"), accents and other combining marks dropped (so NFC
  "café" and NFD "cafe\u0301" both give "cafe"), letters case-folded ("Straße" → "strasse");
- punctuation, symbols (emoji included), control characters and every kind of space
  (no-break, ideographic, ...) become spaces; apostrophes inside words are dropped
  ("don't" → "dont", as Keras's default standardization does); format characters such
  as the byte-order mark, the soft hyphen and zero-width joiners are dropped (the
  zero-width space separates words);
- characters beyond the Basic Multilingual Plane become spaces.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from models import layers  # noqa: F401  registers MaskedPooling and HashedNgramLogits: `import models.text` loads any exported model
from models.folding import HTML_TAG, LAST_CODE, fold
from models.saving import serializable


def fold_table() -> tf.Tensor:
    """fold() of every code point of the Basic Multilingual Plane, and " " for the rest (last entry).

    Built once, eagerly (`tf.init_scope`), whatever graph asks first: every graph that
    standardizes (a vectorizer's adapt, an export's tracing) captures the same tensor,
    where a tensor made inside one traced function could not be used by another.
    """
    with tf.init_scope():
        return _eager_fold_table()


@functools.cache
def _eager_fold_table() -> tf.Tensor:
    return tf.constant([fold(chr(code)) for code in range(LAST_CODE + 1)] + [" "])


@serializable
def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Standardized review strings, shape as given (see the module's docstring)."""
    texts = tf.strings.regex_replace(texts, HTML_TAG, " ")
    codes = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
    pieces = tf.gather(fold_table(), tf.minimum(codes, LAST_CODE + 1))
    return tf.strings.reduce_join(pieces, axis=-1)


def text_vectorizer(
    vocabulary: list[str] | None = None,
    max_tokens: int | None = None,
    max_len: int = 0,
    ragged: bool = False,
    name: str | None = None,
) -> keras.layers.TextVectorization:
    """The one TextVectorization of this project: `standardize`, then whitespace words.

    Give `vocabulary` (starting with "" and "[UNK]", as `get_vocabulary()` returns it)
    to map words to ids, or only `max_tokens` to `adapt()` one. `max_len` > 0 cuts and
    pads to that many ids; `ragged` returns each review's own length instead of padding.
    """
    vectorizer = keras.layers.TextVectorization(
        max_tokens=len(vocabulary) if vocabulary is not None else max_tokens,
        standardize=standardize,
        output_sequence_length=max_len or None,
        ragged=ragged,
        name=name,
    )
    if vocabulary is not None:  # set, not passed: a saved model then keeps it as an asset, not inside its config
        vectorizer.set_vocabulary(vocabulary[2:])
    return vectorizer


@serializable
class NonEmpty(keras.layers.Layer):
    """Token ids [batch, time] → [batch, time + 1] in which no review is empty.

    One padding step is appended (masked: nothing changes for the network), and a review
    with no words at all ("", "!!!", "   ") becomes one out-of-vocabulary token, as the
    prepared data encodes it (`search.data.vectorize`), instead of a sequence of no steps,
    which LSTMs cannot run.
    """

    def call(self, ids):
        ids = keras.ops.pad(ids, [[0, 0], [0, 1]])
        empty = keras.ops.all(keras.ops.equal(ids, 0), axis=1, keepdims=True)
        first = keras.ops.where(empty, keras.ops.ones_like(ids[:, :1]), ids[:, :1])
        return keras.ops.concatenate([first, ids[:, 1:]], axis=1)

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], steps)
