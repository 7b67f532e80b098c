"""The card beside a vectors file learned from unlabeled text (`python -m search.vectors`): FILE.vec.json.

Standard library only, so that the report can state the vectors' provenance and cost from it. It is
read as the run's documents are (`runfiles.documents.Document`: tolerant, unknown keys kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runfiles.documents import EXTRA, Document, _meta
from runfiles.io import read_json, write_json

CARD_SUFFIX = ".json"
"""What the card's name adds to the vectors file's: FILE.vec → FILE.vec.json."""


def card_path(vectors: Path) -> Path:
    """Where the card of a vectors file lies."""
    vectors = Path(vectors)
    return vectors.with_name(vectors.name + CARD_SUFFIX)


@dataclass
class TextSource(Document):
    """One source of the texts the vectors were learned from."""

    flag: str = ""
    """The flag that named it: --unlabeled or --add-training."""
    path: str = ""
    """The path given, made absolute."""
    kind: str = ""
    """What was read: "table" (a table's text column), "archive" or "folder" (their .txt files),
    "lines" (a text file's lines) or "training" (a labelled source's training texts)."""
    texts: int = 0
    """Texts read from it."""
    skipped: int = 0
    """Texts left out: a table's rows without a text, a file's blank lines; for --add-training, the
    rows --drop-missing and --drop-header-rows dropped from the source."""
    splits: dict = field(default_factory=dict)
    """For --add-training, the texts of each training split read ({"train": n[, "val": m]}); never a test split."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class VectorsCard(Document):
    """What a vectors file was learned from, how, and at what cost."""

    command: str = ""
    """The exact command that wrote the file."""
    created_at: str = ""
    """When it finished: ISO 8601, UTC, to the second."""
    vectors_file: str = ""
    """The vectors file's name (word2vec text format, with a header; the card lies beside it)."""
    vectors_fingerprint: str = ""
    """sha256 of the vectors file's bytes (hex): the file this card describes."""
    model: str = ""
    """The gensim model trained: word2vec or fasttext."""
    dim: int = 0
    """Numbers per word."""
    epochs: int = 0
    """Passes over the texts."""
    settings: dict = field(default_factory=dict)
    """The other settings, by flag name without dashes (window, min_count, skip_gram, negative, sample, seed, workers)."""
    sources: list[TextSource] = field(default_factory=list, metadata=_meta(of=TextSource))
    """Where the texts came from, in the order read."""
    texts: int = 0
    """Texts read, all sources together."""
    texts_fingerprint: str = ""
    """sha256 over the texts read, in order (each as its UTF-8 length and bytes; hex)."""
    tokens: int = 0
    """Words of the texts once standardized (`models.text.standardize`), as the vectors were learned from them."""
    vocabulary_size: int = 0
    """Words with a vector (those seen at least min_count times)."""
    wall_s: float = 0.0
    """Seconds from start to finish: reading, standardizing, learning and writing."""
    cpu_s: float = 0.0
    """CPU seconds of the process over the same span, every thread (gensim's workers) included."""
    versions: dict = field(default_factory=dict)
    """Library versions: {library: version}."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def read(cls, vectors: Path) -> VectorsCard | None:
        """The card of a vectors file, or None when it has none; ValueError when it is not a JSON object."""
        value = read_json(card_path(vectors))
        return None if value is None else cls.from_json(value)

    def write(self, vectors: Path) -> None:
        """Replace the card of a vectors file at once."""
        write_json(card_path(vectors), self.to_json())
