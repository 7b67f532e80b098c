"""The run directory's documents as types, all the way down: run.json (its data facts, resources,
LSTM and memory too), summary.json, baseline.json, certify.csv's rows, and best_model/'s card.json
and benchmark.json.

Standard library only. This module is the one place that spells these documents' keys:
the driver (`search/`) writes them and the report (`reports/`) reads them through the
classes below, and docs/run-directory.md points here for their schemas.

- `to_json(objective)` gives the JSON object as it lies on disk; keys that are the
  objective's metric name (`val_accuracy`, `val_accuracy_mean`, ...) come from the
  `Objective` passed (the run's own), never from a field name.
- `from_json(value, objective)` is tolerant, so the report renders runs in progress,
  runs of older drivers and damaged files: a missing key takes the field's default, a
  nested part that is not an object (or a list that is not a list) takes its default,
  scalars are kept as found (readers coerce them), and unknown keys are KEPT in
  `extra` and written back after the known ones, so a rewrite loses nothing.
- Fields marked optional below are left out of `to_json` while they are None: they
  appear on disk only once known (a session's `search_s`, run.json's `nodes`, ...).
- A document read with `from_json` is written back as it was read: its keys in the order
  read, and a key it lacked left out while its field holds the default; so that rewriting
  an older file changes only what was changed.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from runfiles.io import read_json, read_rows, write_json, write_rows
from runfiles.layout import BENCHMARK_FILE, CARD_FILE, OBJECTIVE, STUDY_NAME, Objective, Param, RunDir, counts_text, cut, visible


def _meta(*, key: str = "", optional: bool = False, of: type | None = None, shape: type | None = None) -> dict:
    """A document field's metadata: its JSON key (a template: "{metric}" is the objective's metric),
    whether it is left out while None, the document type its value (or each item) holds, and for a
    field that may be None, the container type its value must have (`shape=dict`: anything else reads as None)."""
    return {"key": key, "optional": optional, "of": of, "shape": shape}


EXTRA = {"extra": True}
"""The metadata of a document's `extra` field: the keys this version does not know, kept as read."""


class Document:
    """What every document shares: `to_json` and a tolerant `from_json`, driven by the fields' metadata."""

    extra: dict
    _keys_read: tuple[str, ...] | None = None
    """The keys `from_json` found, in their order; None for a document made here."""

    def to_json(self, objective: Objective = OBJECTIVE) -> dict:
        """The JSON object as it lies on disk (optional fields that are None left out, then `extra`;
        a document read keeps the keys it was read with, in their order)."""
        read, out = self._keys_read, {}
        for f in _fields(type(self)):
            key, value = _key(f, objective), getattr(self, f.name)
            if value is None and f.metadata.get("optional"):
                continue
            if read is not None and key not in read and value == _default(f):
                continue
            out[key] = _dump(value, objective)
        out |= {k: v for k, v in self.extra.items() if k not in out}
        return out if read is None else {k: out[k] for k in read if k in out} | out

    @classmethod
    def from_json(cls, value: Any, objective: Objective = OBJECTIVE):
        """A document from its JSON object; anything but an object reads as an empty one (all defaults)."""
        value = value if isinstance(value, dict) else {}
        known, values = set(), {}
        for f in _fields(cls):
            key = _key(f, objective)
            known.add(key)
            if key in value:
                values[f.name] = _load(f, value[key], objective)
        document = cls(**values, extra={k: v for k, v in value.items() if k not in known})
        document._keys_read = tuple(value)
        return document


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("extra")]


def _key(f: dataclasses.Field, objective: Objective) -> str:
    return (f.metadata.get("key") or f.name).replace("{metric}", objective.metric)


def _dump(value: Any, objective: Objective) -> Any:
    if isinstance(value, Document):
        return value.to_json(objective)
    if isinstance(value, list):
        return [_dump(v, objective) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, objective) for k, v in value.items()}
    return value


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _load(f: dataclasses.Field, value: Any, objective: Objective) -> Any:
    """One field's value from JSON: nested documents built, containers of the wrong shape → the default."""
    of, default = f.metadata.get("of"), _default(f)
    if isinstance(default, list):
        if not isinstance(value, list):
            return default
        return [of.from_json(v, objective) for v in value if isinstance(v, dict)] if of else value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return default
        return {k: of.from_json(v, objective) for k, v in value.items() if isinstance(v, dict)} if of else value
    if isinstance(default, Document):
        return of.from_json(value, objective)
    if of is not None and isinstance(value, list):  # an optional list of documents
        return [of.from_json(v, objective) for v in value if isinstance(v, dict)]
    if of is not None:
        return of.from_json(value, objective) if isinstance(value, dict) else None
    if f.metadata.get("shape") is dict:
        return value if isinstance(value, dict) else None
    return value


# ---------------------------------------------------------------- run.json's parts


@dataclass
class Duplicates(Document):
    """Texts of one split that copy a text of another, after the standardization (the data facts' duplicates)."""

    test_in_training: int = 0
    """Test reviews that copy a training review (train or validation); empty texts are no copies."""
    val_in_train: int = 0
    """Validation reviews that copy a train review."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


UNBALANCED = 1.5
"""Classes count as unbalanced when the largest holds more than this many times an equal share (1/K)."""


@dataclass
class EmbeddingFacts(Document):
    """The word vectors a run's embedding may start from (`search.data.with_vectors`): run.json's data["embeddings"]."""

    file: str = ""
    """The vectors file as --embeddings names it, made absolute."""
    format: str = ""
    """Its format: glove, word2vec (text with a header; fastText's .vec) or binary (`search.data.vectors.FORMATS`)."""
    sha256: str = ""
    """sha256 of the file's bytes (hex): a resumed run must find the same."""
    dim: int = 0
    """Numbers per word: the embedding's width in every configuration of the run."""
    rows: int = 0
    """Word rows in the file."""
    vocabulary_coverage: float = 0.0
    """The share of the vocabulary's words (padding and [UNK] left out) with a vector in the file."""
    token_coverage: float | None = None
    """The share of the training tokens ([UNK]'s included) whose word has a vector in the file."""
    card: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """The card beside the file (FILE.json, `runfiles.vectorcard.VectorsCard`'s JSON) as it was when the
    data was prepared: where the vectors were learned and at what cost; absent without one."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    def text(self) -> str:
        """The vectors line: file, format and size, coverage of the vocabulary and of the training tokens."""
        tokens = f", {self.token_coverage:.1%} of the training tokens" if self.token_coverage is not None else ""
        return (
            f"{self.file} ({self.format}, {self.rows:,} words x {self.dim}, sha256 {self.sha256[:12]}): "
            f"a vector for {self.vocabulary_coverage:.1%} of the vocabulary{tokens}"
        )


@dataclass
class DataFacts(Document):
    """What reading, splitting and checking the data found (`search.data.prepare`; run.json's data,
    card.json's data and the prepared data's cache), and what a reader is told about it.

    A source's reader fills in what reading found (`search.data.sources.read_reviews`), the
    preparation the rest. Fields that only some sources or options produce are left out while None.
    """

    source: str = ""
    """Where the data came from: --data as the run uses it (a local path made absolute, tfds or tfds:NAME)."""
    fingerprint: str | None = None
    """The prepared data's fingerprint (`search.data.data_fingerprint`): what a resumed run must find again."""
    sizes: dict[str, int] = field(default_factory=dict)
    """Reviews per split: {"train"|"val"|"test": count}."""
    tokens: dict[str, int] = field(default_factory=dict)
    """Tokens per split, every review whole: {"train"|"val"|"test": count}."""
    vocabulary_size: int | None = None
    """Words in the vocabulary built from the training split ("" and "[UNK]" included)."""
    classes: list[str] | None = None
    """The class names in index order (a label i is classes[i]); None for runs recorded before classes were named."""
    class_counts: dict | None = field(default=None, metadata=_meta(shape=dict))
    """Reviews per split and class: {"train"|"val"|"test": {class: count}}, every class named."""
    val_split: str = "review by review"
    """How validation was made: "by blocks of N review ids", "review by review" or "given by the source"."""
    test_split: str = ""
    """How the test split was made: "given by the source", "given: FILE" or "carved: ..." (empty in older runs)."""
    empty_texts: dict | None = field(default=None, metadata=_meta(shape=dict))
    """Texts without a word once standardized, per split: {"train"|"val"|"test": count} (kept: the model answers them)."""
    wordless_characters: dict | None = field(default=None, metadata=_meta(shape=dict))
    """The characters the standardization dropped from the texts left without a word, the most frequent
    with their counts ({} when none)."""
    duplicates: Duplicates | None = field(default=None, metadata=_meta(of=Duplicates))
    """Texts that copy a text of another split; None for runs recorded before they were counted."""
    read: dict | None = field(default=None, metadata=_meta(shape=dict))
    """Reviews per split and class as read: its labels made classes, a test split carved where the
    source gave none, before any limit or validation split: {split: {class: count}}."""
    reviews_with_replaced_bytes: int = 0
    """Reviews whose bytes were not UTF-8, the bad bytes replaced."""
    hidden_files_skipped: int = 0
    """Hidden files (.*, macOS's ._*) skipped in a folder or archive."""
    folders_skipped: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """Files skipped in folders that are not a class, by folder ({"train/unsup": 50000}); absent when none."""
    features: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """The TensorFlow Datasets features read: {"text": name, "label": name}; absent for other sources."""
    unlabelled_splits: list | None = field(default=None, metadata=_meta(optional=True))
    """TensorFlow Datasets splits skipped for having no label; absent when none."""
    dropped_missing: int | None = field(default=None, metadata=_meta(optional=True))
    """Rows without a label dropped (--drop-missing); absent without it."""
    dropped_missing_texts: int | None = field(default=None, metadata=_meta(optional=True))
    """Rows with a label but without a text dropped (--drop-missing, tables); absent without it."""
    header_rows_dropped: int | None = field(default=None, metadata=_meta(optional=True))
    """Rows repeating a table's header dropped (--drop-header-rows); absent without it."""
    labels_stripped: int | None = field(default=None, metadata=_meta(optional=True))
    """Labels that had surrounding whitespace, stripped; absent when none."""
    labels_case_folded: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """Labels merged up to case (--fold-label-case): {spelling kept: {spelling merged into it: count}}; absent when none."""
    labels_normalized: int | None = field(default=None, metadata=_meta(optional=True))
    """Labels that differed from another spelling only invisibly (Unicode's composed form, format
    characters such as a zero-width space), normalized; absent when none."""
    labels_as_numbers: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """Labels read as the numbers they spell in another way: {number: {spelling: count}} ({"1": {"01": 3}}); absent when none."""
    other_files_skipped: int | None = field(default=None, metadata=_meta(optional=True))
    """Files in class folders that do not end in .txt (in any case), skipped; absent when none."""
    text_column: str | None = None
    """The DataConfig field of this name the data was prepared with (None: recorded before it existed); so are the next."""
    label_column: str | None = None
    """DataConfig.label_column."""
    test_fraction: float | None = None
    """DataConfig.test_fraction."""
    drop_missing: bool | None = None
    """DataConfig.drop_missing."""
    drop_header_rows: bool | None = None
    """DataConfig.drop_header_rows."""
    fold_label_case: bool | None = None
    """DataConfig.fold_label_case."""
    quoting: str | None = None
    """DataConfig.quoting."""
    delimiter: str | None = None
    """DataConfig.delimiter."""
    val_fraction: float | None = None
    """DataConfig.val_fraction."""
    val_block: int | None = None
    """DataConfig.val_block."""
    max_vocab: int | None = None
    """DataConfig.max_vocab."""
    limit: int | None = None
    """DataConfig.limit."""
    test_limit: int | None = None
    """DataConfig.test_limit."""
    seed: int | None = None
    """DataConfig.seed."""
    embeddings: EmbeddingFacts | None = field(default=None, metadata=_meta(optional=True, of=EmbeddingFacts))
    """The word vectors given with --embeddings; absent without them."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @property
    def checked(self) -> bool:
        """Whether the texts were checked (copies, dropped characters) and the classes named: facts
        of a preparation since those checks (a cached preparation made before them is made again)."""
        return self.duplicates is not None and self.classes is not None and self.wordless_characters is not None

    @property
    def untested(self) -> bool:
        """Whether the data has no test split (one table file, --test-fraction 0): a run's result
        is then the cross-validated estimate."""
        return self.sizes.get("test") == 0

    def naming(self, source: str) -> DataFacts:
        """The same facts naming `source` (a cached preparation names the source it was first made
        from), written back with the keys they were read with."""
        facts = copy.copy(self)
        facts.source = source
        return facts

    @property
    def test_copies(self) -> int:
        """Test reviews that copy a training review (0 where not recorded)."""
        return self.duplicates.test_in_training if self.duplicates else 0

    def copies_note(self) -> str:
        """What to say beside a test accuracy when some test reviews copy training ones:
        " (N of them copy a training review)", or "" when none does."""
        copies = self.test_copies
        return f" ({copies:,} of them cop{'ies' if copies == 1 else 'y'} a training review)" if copies else ""

    def majority_floor(self) -> tuple[str, float] | None:
        """The test split's largest class and its share: the accuracy of always answering it, the floor
        any model must beat; None for runs recorded without class counts."""
        counts = (self.class_counts or {}).get("test") or {}
        total = sum(counts.values())
        if not total:
            return None
        name = max(counts, key=counts.get)
        return name, counts[name] / total

    def floor_note(self, test_accuracy: float | None, objective: Objective = OBJECTIVE) -> str:
        """A warning when a test accuracy does not beat `majority_floor`, else "": with the advice to rank
        by macro-F1 when the classes are `UNBALANCED` and the run did not."""
        floor = self.majority_floor()
        if floor is None or test_accuracy is None or test_accuracy > floor[1]:
            return ""
        unbalanced = floor[1] > UNBALANCED / len(self.class_counts["test"])
        advice = unbalanced and objective.metric != "val_macro_f1"
        return (
            f"the exported model's test accuracy {test_accuracy:.2%} does not beat always answering "
            f'"{floor[0]}" ({floor[1]:.2%} of the test split)'
            + ("; the classes are unbalanced: rank by --objective val_macro_f1" if advice else "")
        )

    def class_text(self, shown: int | None = None) -> str:
        """The classes line: each class's share of the training split (the first `shown` of more,
        `cut`), the majority-class floor on the test split, and the output head; "" for runs recorded
        without classes."""
        classes, counts = self.classes, (self.class_counts or {}).get("train") or {}
        if not classes or not counts:
            return ""
        total = sum(counts.values())
        shares = cut([f"{visible(name)} {counts.get(name, 0) / total:.1%}" for name in classes], shown, " · ")
        floor = self.majority_floor()
        head = "one logit (sigmoid)" if len(classes) == 2 else f"{len(classes)} logits (softmax), the tutorial's models too"
        text = f"{len(classes)}: {shares} of train; head: {head}"
        return text + (f"; majority-class floor {floor[1]:.1%} on test ({floor[0]})" if floor else "")

    def data_notes(self, shown: int | None = None) -> list[str]:
        """What reading and checking the data found that a reader should be told: dropped rows, cleaned
        labels, skipped, repaired, empty or duplicated texts, those that are non-zero; lists in them
        cut after `shown` items (`cut`)."""
        copies, skipped = self.duplicates or Duplicates(), self.folders_skipped or {}
        folded = self.labels_case_folded or {}
        merges = [f"{', '.join(spellings)} → {kept}" for kept, spellings in folded.items()]
        numbers = [f"{', '.join(spellings)} → {number}" for number, spellings in (self.labels_as_numbers or {}).items()]
        notes = [
            (self.header_rows_dropped, "rows repeating the header dropped (--drop-header-rows)"),
            (self.dropped_missing, "rows without a label dropped (--drop-missing)"),
            (self.dropped_missing_texts, "rows without a text dropped (--drop-missing)"),
            (self.labels_stripped, "labels with surrounding whitespace, stripped"),
            (self.labels_normalized, "labels with invisible differences (Unicode form, format characters), normalized"),
            (
                sum(sum(s.values()) for s in (self.labels_as_numbers or {}).values()),
                f"labels read as numbers ({cut(numbers, shown)})",
            ),
            (
                sum(sum(s.values()) for s in folded.values()),
                f"labels merged up to case (--fold-label-case: {cut(merges, shown)})",
            ),
            (self.reviews_with_replaced_bytes, "reviews with undecodable bytes replaced"),
            (self.hidden_files_skipped, "hidden files skipped"),
            (self.other_files_skipped, "files in class folders not ending in .txt, skipped"),
            (sum(skipped.values()), f"files skipped in folders that are not a class ({cut(list(skipped), shown)})"),
            (sum((self.empty_texts or {}).values()), "texts without a word (kept)"),
            (copies.test_in_training, "test reviews that copy a training review"),
            (copies.val_in_train, "validation reviews that copy a train review"),
        ]
        said = [f"{what}: {count:,}" for count, what in notes if count]
        if self.wordless_characters:
            dropped = counts_text(self.wordless_characters)
            said.append(f"the standardization dropped every character of the texts without a word, most often: {dropped}")
        return said


@dataclass
class LstmFacts(Document):
    """The LSTM implementation a run's trials use (run.json's lstm; `search.tuner.choose_lstm`)."""

    requested: str = "auto"
    """What --lstm asked for: auto, fused or keras."""
    trials: str = "auto"
    """What the trials are given (`models.lstm_for` turns "auto" into one on each worker's device)."""
    kernel: str | None = field(default=None, metadata=_meta(optional=True))
    """The fused kernel's library, where the trials may use it; absent otherwise."""
    reason: str | None = field(default=None, metadata=_meta(optional=True))
    """Why the trials use Keras's layers where the fused kernel was wanted but unavailable; absent otherwise."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Resources(Document):
    """How trials are packed onto what Ray has (`search.config.plan_resources`; run.json's resources)."""

    cpus: int = 0
    """CPUs the run uses: --cpus, else every CPU of Ray's."""
    gpus: float = 0
    """GPUs the run uses (--gpus)."""
    cpus_per_trial: int = 1
    """CPUs each trial is given."""
    gpus_per_trial: float = 0
    """GPUs (or a share of one) each trial is given; 0 on CPUs."""
    concurrency: int = 1
    """Trials that run at once."""
    address: str | None = None
    """The Ray cluster's address (--address), or None for Ray started on this machine."""
    trial_memory_mb: int | None = field(default=None, metadata=_meta(optional=True))
    """MiB of memory a trial on CPUs may use: Ray's `memory` resource (what it holds for tasks and
    actors: the memory available when Ray started, less its object store) in proportion to the
    CPUs the trial is given of Ray's; 0 (not estimated) for trials on GPUs (search.memory); absent
    in runs recorded before it."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class MemoryFacts(Document):
    """What a trial's memory holds (`search.session.Session.memory_facts`; run.json's memory)."""

    trial_mb: int | None = None
    """MiB a trial may use (`Resources.trial_memory_mb`)."""
    training_mb: int | None = None
    """MiB its training may use, less its process and data (TrainConfig.memory_mb)."""
    widest: dict = field(default_factory=dict)
    """The space's widest configuration (`search.space.widest`): batch_size, max_len and its ModelConfig's fields."""
    widest_tokens: int = 0
    """Tokens a review keeps in that configuration; 0: memory cuts none."""
    reviews_longer: dict[str, int] = field(default_factory=dict)
    """Training and validation reviews longer than that: {"train"|"val": count} (0 where none is cut)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    def text(self) -> str:
        """The header's memory line, where a trial's memory cuts reviews; else ""."""
        longer = self.reviews_longer
        if not any(longer.values()):
            return ""
        widest = self.widest
        return (
            f"{self.trial_mb:,} MiB per trial: reviews cut to what a trial's batch and width hold in it "
            f"({self.widest_tokens:,} tokens in the widest: batch {widest['batch_size']}, embedding "
            f"{widest['embedding_dim']}, units {'+'.join(map(str, widest['units']))}); "
            f"{longer['train']:,} training and {longer['val']:,} validation reviews are longer"
        )


# ---------------------------------------------------------------- run.json


@dataclass
class SessionRecord(Document):
    """One driver session of a run (run.json's sessions[i]): a search, or a resume of it."""

    started_at: str = ""
    """When it started: ISO 8601, UTC, to the second."""
    command: str = ""
    """Its command line."""
    search_s: float | None = field(default=None, metadata=_meta(optional=True))
    """Seconds it spent searching (Tune's fit); absent until the session settles. A session killed
    outright gets it from the next resume: from its first trial's start to its last reported epoch,
    as epochs.csv records them (`runfiles.trials.searched_s`), so at least what it spent."""
    examples_used: int | None = field(default=None, metadata=_meta(optional=True))
    """Training examples the whole run had used when the session settled."""
    wall_s: float | None = field(default=None, metadata=_meta(optional=True))
    """Its wall time in seconds, until it settled, then until its summary; absent for a killed session."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class WarmSource(Document):
    """An earlier run a warm-started search learned from (run.json's warm_start[i]; search.warm)."""

    run: str = ""
    """The earlier run's folder, absolute."""
    taken: str = ""
    """What entered this run: "trials" (same data and objective: its ended trials, added to the
    study, never trained here) or "configurations" (its best ones, queued first and trained here)."""
    why: str = ""
    """Why only configurations were taken (other data, another objective); empty for trials."""
    kept: int = 0
    """Trials added, or configurations queued."""
    dropped: int = 0
    """Trials or configurations left out: a value outside this run's space."""
    repeated: int = 0
    """Trials or configurations left out: the same parameters (and, for a trial, values) as one an
    earlier --warm-start run handed on already (a copy of a run, given twice)."""
    filled: list = field(default_factory=list)
    """Hyperparameters the earlier run lacks, taken from this run's start point (or pinned value)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class RunFacts(Document):
    """run.json: what a reader needs to interpret the run. Written when a session starts, then
    updated when it settles and when it writes its summary."""

    command: str = ""
    """The first session's command line."""
    started_at: str = ""
    """When the run started: ISO 8601, UTC."""
    configs: dict = field(default_factory=dict)
    """The configs: {"search": SearchConfig, "data": DataConfig, "train": the fields every trial
    shares, "certify": CertifyConfig or None, "benchmark": whether search.run measures the export's
    serving}; a run recorded before "certify" and "benchmark" lacks them."""
    data: DataFacts = field(default_factory=DataFacts, metadata=_meta(of=DataFacts))
    """What reading, splitting and checking the data found."""
    space: list = field(default_factory=list)
    """The search space: one `Param.to_json()` per hyperparameter (see `params`)."""
    study: str = STUDY_NAME
    """The Optuna study's name in study.db."""
    objective: Objective | None = field(default=None, metadata=_meta(optional=True))
    """The metric trials are ranked by and its direction ({metric, mode}); see `ranking`."""
    presets: dict = field(default_factory=dict)
    """The tutorial's models as points of the space: {preset name: {hyperparameter: value}}."""
    start_point: dict | None = field(default=None, metadata=_meta(shape=dict))
    """The point queued after the presets, or None when none was."""
    fidelity: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """How the examples budget is spent (search.config.FidelityPlan: max_epochs, rungs,
    budget_epochs, configurations, rule), or None when --max-epochs was given or no budget."""
    resources: Resources | None = field(default=None, metadata=_meta(of=Resources))
    """What the run was given: CPUs, GPUs, per trial, concurrency, address; None where not recorded."""
    memory: MemoryFacts | None = field(default=None, metadata=_meta(optional=True, of=MemoryFacts))
    """What a trial's memory holds; None without a bound (trials on GPUs, or a run recorded before it)."""
    lstm: LstmFacts = field(default_factory=LstmFacts, metadata=_meta(of=LstmFacts))
    """The LSTM implementation the trials use."""
    versions: dict = field(default_factory=dict)
    """Library versions: {library: version}."""
    sessions: list[SessionRecord] = field(default_factory=list, metadata=_meta(of=SessionRecord))
    """One record per driver session, in order."""
    nodes: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """Which implementation each node ran: {node id: {hostname, lstm: [...]}}; absent until a session settles."""
    warm_start: list[WarmSource] | None = field(default=None, metadata=_meta(optional=True, of=WarmSource))
    """The earlier runs this one learned from (--warm-start), in the order given; absent for a cold start."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know (an older driver's argv, ...), kept as read."""

    def to_json(self, objective: Objective | None = None) -> dict:
        """run.json as it lies on disk."""
        out = super().to_json(objective or self.ranking)
        if self.objective is not None:
            out["objective"] = dataclasses.asdict(self.objective)
        return out

    @classmethod
    def from_json(cls, value: Any, objective: Objective = OBJECTIVE) -> RunFacts:
        """run.json from its JSON object (tolerant; see the module's docstring)."""
        facts = super().from_json(value, objective)
        facts.objective = _objective(facts.objective)
        return facts

    @property
    def ranking(self) -> Objective:
        """The run's objective (OBJECTIVE's metric and mode where run.json names none)."""
        return self.objective or OBJECTIVE

    @property
    def params(self) -> list[Param]:
        """The search space as Params, skipping entries that are not one."""
        params = []
        for entry in self.space:
            try:
                params.append(Param.from_json(entry))
            except ValueError:
                continue
        return params

    @staticmethod
    def configs_of(search: dict, data: dict, train: dict, certify: dict | None = None, benchmark: bool = True) -> dict:
        """run.json's configs from the SearchConfig's, the DataConfig's, the shared TrainConfig's and
        the CertifyConfig's fields (None: no certification), and whether the serving is benchmarked."""
        return {"search": search, "data": data, "train": train, "certify": certify, "benchmark": benchmark}

    @property
    def search_config(self) -> dict:
        """The recorded SearchConfig's fields."""
        return _dict(self.configs.get("search"))

    @property
    def data_config(self) -> dict:
        """The recorded DataConfig's fields."""
        return _dict(self.configs.get("data"))

    @property
    def source(self) -> Any:
        """Where the data came from: the data facts' source, else the data config's."""
        return self.data.source or self.data_config.get("source")

    @property
    def fingerprint(self) -> str | None:
        """The data's fingerprint, or None."""
        return self.data.fingerprint

    def command_text(self) -> str:
        """The command line (an older driver recorded an argv list instead)."""
        return self.command or " ".join(map(str, self.extra.get("argv") or []))

    def search_s(self) -> float:
        """Seconds the run's sessions spent searching, as recorded so far."""
        return sum(float(s.search_s or 0.0) for s in self.sessions)

    def wall_s(self) -> float:
        """The run's wall time in seconds: the sessions' as recorded (a session killed outright recorded none)."""
        return sum(float(s.wall_s or 0.0) for s in self.sessions)

    def resumed_text(self) -> str:
        """What the header says of a resumed run, e.g. "resumed: session 2; the run began
        2026-12-07T12:42:00+00:00, searched 14.2 min" (seconds under a minute); "" for a run's
        first session."""
        if len(self.sessions) < 2:
            return ""
        searched = self.search_s()
        took = f"{searched:.0f} s" if searched < 60 else f"{searched / 60:.1f} min"
        return f"resumed: session {len(self.sessions)}; the run began {self.started_at}, searched {took}"

    @classmethod
    def read(cls, run_dir: RunDir) -> RunFacts | None:
        """run.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.run_json)
        return None if value is None else cls.from_json(value)

    def write(self, run_dir: RunDir) -> None:
        """Replace run.json at once."""
        write_json(run_dir.run_json, self.to_json())


def _objective(value: Any) -> Objective | None:
    """run.json's objective: a metric (default val_accuracy) and a mode ("min" or else "max")."""
    if not isinstance(value, dict):
        return None
    mode = "min" if str(value.get("mode") or "max").lower() == "min" else "max"
    return Objective(str(value.get("metric") or OBJECTIVE.metric), mode)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- certify.csv and summary.json


@dataclass
class CertifyRow(Document):
    """One certification seed: a row of certify.csv, and an entry of a certified configuration's seeds."""

    trial_id: str = ""
    """The trial whose configuration was re-trained."""
    rank: int | None = None
    """Its rank among the certified configurations (1 = best by the objective)."""
    seed: int | None = None
    """The fresh seed (the run's seed + 1, + 2, ...)."""
    epochs: int | None = None
    """Epochs trained, as many as its trial trained."""
    best_epoch: int | None = None
    """The epoch kept: the best by the objective."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at that epoch (key: the objective's metric, e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """Accuracy of that epoch's model on the test split."""
    examples: int | None = None
    """Training examples processed."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Macro-F1 of that epoch's model on the test split (absent in runs certified before it was recorded)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    INTEGERS: ClassVar[tuple[str, ...]] = ("rank", "seed", "epochs", "best_epoch", "examples")
    """The fields certify.csv holds as integers (trial_id is text, the rest numbers)."""

    @classmethod
    def from_row(cls, cells: dict, objective: Objective = OBJECTIVE) -> CertifyRow:
        """A row of certify.csv (text cells) → CertifyRow: integers and numbers parsed, empty cells None."""
        values = {}
        for f in _fields(cls):
            key = _key(f, objective)
            if key in cells:
                values[key] = cells[key] if f.name == "trial_id" else _number(cells[key], f.name in cls.INTEGERS)
        return cls.from_json(values, objective)

    @staticmethod
    def columns(objective: Objective = OBJECTIVE) -> list[str]:
        """certify.csv's columns, in order."""
        return [_key(f, objective) for f in _fields(CertifyRow)]

    @classmethod
    def read(cls, run_dir: RunDir, objective: Objective = OBJECTIVE) -> list[CertifyRow]:
        """certify.csv of `run_dir` ([] when absent)."""
        return [cls.from_row(cells, objective) for cells in read_rows(run_dir.certify_csv)]

    @staticmethod
    def write(run_dir: RunDir, rows: list[CertifyRow], objective: Objective = OBJECTIVE) -> None:
        """Replace certify.csv at once."""
        write_rows(run_dir.certify_csv, CertifyRow.columns(objective), [row.to_json(objective) for row in rows])


def _number(text: Any, integer: bool) -> Any:
    """A CSV cell as an int or a float; empty → None; unparsable text kept as it is."""
    if text in ("", None):
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text


@dataclass
class RefitSeed(Document):
    """One refit of the certified configuration on train + validation."""

    seed: int | None = None
    """The seed (the same as one of certification's)."""
    epochs: int | None = None
    """Epochs trained (its trial's)."""
    test_accuracy: float | None = None
    """Accuracy of its last epoch's model on the test split."""
    examples: int | None = None
    """Training examples processed."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Its macro-F1 on the test split."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Refit(Document):
    """The certified configuration fitted on train + validation with each seed (summary.json's certification.refit)."""

    seeds: list[RefitSeed] = field(default_factory=list, metadata=_meta(of=RefitSeed))
    """One entry per seed."""
    test_accuracy_mean: float | None = None
    """Mean test accuracy over the seeds: the headline."""
    test_accuracy_std: float | None = None
    """Its standard deviation over the seeds."""
    examples: int | None = None
    """Training examples the refits processed."""
    test_macro_f1_mean: float | None = field(default=None, metadata=_meta(optional=True))
    """Mean test macro-F1 over the seeds."""
    test_macro_f1_std: float | None = field(default=None, metadata=_meta(optional=True))
    """Its standard deviation over the seeds."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class CertifiedConfig(Document):
    """One configuration re-trained over seeds (summary.json's certification.configurations[i])."""

    trial_id: str = ""
    """The trial whose configuration it is."""
    rank: int | None = None
    """1 = the best trial by the objective."""
    params: dict = field(default_factory=dict)
    """Its hyperparameters: {name: value}."""
    epochs: int | None = None
    """Epochs each seed trained."""
    value_mean: float | None = field(default=None, metadata=_meta(key="{metric}_mean"))
    """The objective's mean over seeds (key: e.g. val_accuracy_mean)."""
    value_std: float | None = field(default=None, metadata=_meta(key="{metric}_std"))
    """Its standard deviation over seeds (key: e.g. val_accuracy_std)."""
    test_accuracy_mean: float | None = None
    """Mean test accuracy over seeds."""
    test_accuracy_std: float | None = None
    """Its standard deviation over seeds."""
    test_macro_f1_mean: float | None = field(default=None, metadata=_meta(optional=True))
    """Mean test macro-F1 over seeds."""
    test_macro_f1_std: float | None = field(default=None, metadata=_meta(optional=True))
    """Its standard deviation over seeds."""
    seeds: list[CertifyRow] = field(default_factory=list, metadata=_meta(of=CertifyRow))
    """Each seed's result, as certify.csv holds it."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Ensemble(Document):
    """The exported mean-logit ensemble of the refits (summary.json's certification.ensemble)."""

    seeds: list = field(default_factory=list)
    """The refits' seeds, one network each."""
    test_accuracy: float | None = None
    """Its accuracy on the test split."""
    test_macro_f1: float | None = None
    """Its macro-F1 on the test split."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Ablation(Document):
    """The exported configuration's two parts trained alone, with certification's seeds and epochs
    (summary.json's certification.ablation): what each part contributes to the model shipped."""

    network: CertifiedConfig | None = field(default=None, metadata=_meta(of=CertifiedConfig))
    """The BiLSTM network without the linear part (ngram_buckets 0), over the seeds."""
    linear: CertifiedConfig | None = field(default=None, metadata=_meta(of=CertifiedConfig))
    """The linear part without the network, over the seeds."""
    examples: int | None = None
    """Training examples the ablation processed (counted in certification's)."""
    wall_s: float | None = None
    """Its wall time in seconds (within certification's)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class CrossValidated(Document):
    """One configuration cross-validated over folds and seeds (certification.cross_validation.configurations[i])."""

    trial_id: str = ""
    """The trial whose configuration it is."""
    params: dict = field(default_factory=dict)
    """Its hyperparameters: {name: value}."""
    epochs: int | None = None
    """Epochs each fold's model trained (those at which its trial peaked)."""
    seeds: list = field(default_factory=list)
    """The seeds, one model per fold each."""
    accuracy: float | None = None
    """Out-of-fold accuracy over every labelled example, mean over the seeds: the CV estimate."""
    accuracy_low: float | None = None
    """Its 95% interval's lower end (reports.claims: the bootstrap over examples)."""
    accuracy_high: float | None = None
    """Its 95% interval's upper end."""
    fold_accuracy: list = field(default_factory=list)
    """The held-out fold's accuracy of each fold and seed, fold by fold."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    def text(self, k: int) -> str:
        """The estimate as a result is stated: "10-fold cross-validated accuracy 84.1% [83.0, 85.2]"."""
        return cross_validated_text(k, self.accuracy, self.accuracy_low, self.accuracy_high)


def cross_validated_text(k: int, accuracy: float, low: float, high: float) -> str:
    """A K-fold cross-validated accuracy with its 95% interval, in percent: "10-fold cross-validated
    accuracy 84.1% [83.0, 85.2]"."""
    return f"{k}-fold cross-validated accuracy {accuracy:.1%} [{low * 100:.1f}, {high * 100:.1f}]"


@dataclass
class CrossValidation(Document):
    """K-fold cross-validation of the top configurations over train + validation (summary.json's
    certification.cross_validation; --cv K)."""

    k: int | None = None
    """Folds."""
    seed: int | None = None
    """The seed of the folds' stratified shuffle (the run's); DIR/cv_folds.csv records them."""
    labelled: int | None = None
    """Labelled training examples split into folds (train + validation)."""
    configurations: list[CrossValidated] = field(default_factory=list, metadata=_meta(of=CrossValidated))
    """The configurations cross-validated, best trial first."""
    examples: int | None = None
    """Training examples it processed (counted in certification's)."""
    wall_s: float | None = None
    """Its wall time in seconds."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Certification(Document):
    """summary.json's certification: the top configurations re-trained over seeds (python -m search.certify)."""

    configurations: list[CertifiedConfig] = field(default_factory=list, metadata=_meta(of=CertifiedConfig))
    """The configurations certified, best trial first."""
    exported: str = ""
    """The trial id of the configuration exported: the best mean of the objective."""
    examples: int | None = None
    """Training examples certification processed, the refits' and the ablation's included."""
    wall_s: float | None = None
    """Its wall time in seconds."""
    refit: Refit | None = field(default=None, metadata=_meta(optional=True, of=Refit))
    """The refit on train + validation; absent with --no-refit."""
    ensemble: Ensemble | None = field(default=None, metadata=_meta(optional=True, of=Ensemble))
    """The mean-logit ensemble of the refits, when it was exported (--ensemble)."""
    cross_validation: CrossValidation | None = field(default=None, metadata=_meta(optional=True, of=CrossValidation))
    """K-fold cross-validation of the top configurations (--cv K); absent without."""
    ablation: Ablation | None = field(default=None, metadata=_meta(optional=True, of=Ablation))
    """The exported configuration's network alone and linear part alone; absent without a linear
    part or with --no-ablation."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @property
    def chosen(self) -> CertifiedConfig | None:
        """The exported configuration's entry, or None."""
        return next((c for c in self.configurations if c.trial_id == self.exported), None)

    @property
    def cross_validated(self) -> CrossValidated | None:
        """The exported configuration's cross-validation (--cv K), or None."""
        found = self.cross_validation.configurations if self.cross_validation else []
        return next((c for c in found if c.trial_id == self.exported), None)


@dataclass
class Certified(Document):
    """The exported model's certification: means and standard deviations over seeds (exported.certified)."""

    value_mean: float | None = field(default=None, metadata=_meta(key="{metric}_mean"))
    """The objective's mean over certification's seeds."""
    value_std: float | None = field(default=None, metadata=_meta(key="{metric}_std"))
    """Its standard deviation."""
    test_accuracy_mean: float | None = None
    """Mean test accuracy over certification's seeds."""
    test_accuracy_std: float | None = None
    """Its standard deviation."""
    refit_test_accuracy_mean: float | None = field(default=None, metadata=_meta(optional=True))
    """Mean test accuracy over the refits on train + validation; absent without a refit."""
    refit_test_accuracy_std: float | None = field(default=None, metadata=_meta(optional=True))
    """Its standard deviation."""
    cv_folds: int | None = field(default=None, metadata=_meta(optional=True))
    """K of its K-fold cross-validation over train + validation (--cv K); absent without."""
    cv_accuracy: float | None = field(default=None, metadata=_meta(optional=True))
    """Its cross-validated accuracy (the mean over seeds of out-of-fold accuracy): the stated
    accuracy of a run without a test split (--test-fraction 0)."""
    cv_accuracy_low: float | None = field(default=None, metadata=_meta(optional=True))
    """The lower end of that accuracy's 95% interval."""
    cv_accuracy_high: float | None = field(default=None, metadata=_meta(optional=True))
    """Its upper end."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Exported(Document):
    """What best_model/ holds (summary.json's exported), as its card.json says."""

    trial_id: str | None = None
    """The trial whose configuration it is."""
    seed: int | None = None
    """The certification seed it was trained with; None for the trial's own weights."""
    epoch: int | None = None
    """The epoch kept."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at that epoch (key: e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """Accuracy on the test split."""
    test_examples: int | None = None
    """Reviews in the test split."""
    classes: list[str] | None = field(default=None, metadata=_meta(optional=True))
    """The class names in the model's output order (absent for runs recorded before classes were named)."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """The unweighted mean over classes of F1 on the test split."""
    test_confusion: list[list[int]] | None = field(default=None, metadata=_meta(optional=True))
    """Test reviews by true class (rows) and predicted class (columns), in `classes` order."""
    certified: Certified | None = field(default=None, metadata=_meta(of=Certified))
    """Its certification's means and standard deviations, or None."""
    refit: bool | None = field(default=None, metadata=_meta(optional=True))
    """Whether it was refit on train + validation; present once certification exported it."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def from_card(cls, card: Card | None, refit: bool = False) -> Exported | None:
        """summary.json's exported from best_model/card.json (None without a card); `refit`: with the card's refit."""
        if card is None:
            return None
        return cls(
            trial_id=card.trial_id,
            seed=card.seed,
            epoch=card.epoch,
            value=card.value,
            test_accuracy=card.test_accuracy,
            test_examples=card.test_examples,
            classes=card.classes,
            test_macro_f1=card.test_macro_f1,
            test_confusion=card.test_confusion,
            certified=card.certified,
            refit=card.refit if refit else None,
        )


@dataclass
class BestTrial(Document):
    """The search's best trial, the study's best (summary.json's best)."""

    trial_id: str = ""
    """trial_NNNN."""
    number: int | None = None
    """The Optuna trial number."""
    params: dict | None = field(default=None, metadata=_meta(shape=dict))
    """Its hyperparameters: {name: value} (None when not recorded)."""
    preset: str = ""
    """The tutorial preset it is, or empty."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at its best epoch (key: e.g. val_accuracy)."""
    best_epoch: int | None = None
    """Its best epoch."""
    examples_per_s: float | None = None
    """Training examples per second, mean over epochs."""
    tokens_per_s: float | None = None
    """Real training tokens per second, mean over epochs."""
    test_accuracy: float | None = field(default=None, metadata=_meta(optional=True))
    """Test accuracy; present only when its own model is the export."""
    test_examples: int | None = field(default=None, metadata=_meta(optional=True))
    """Reviews in the test split; present with test_accuracy."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class TutorialEntry(Document):
    """One of the tutorial's presets among the trials (summary.json's tutorial[preset])."""

    trial_id: str = ""
    """Its trial."""
    state: str = ""
    """A State value."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at its best epoch (key: e.g. val_accuracy)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Budget(Document):
    """The search's budget and what it used (summary.json's budget)."""

    trials: int | None = None
    """Trials asked for (--trials)."""
    max_epochs: int | None = None
    """Epochs a trial may train."""
    time_budget_min: float | None = None
    """Minutes of searching, or None."""
    budget_examples: int | None = None
    """Training examples the search may process, or None."""
    examples_used: int | None = None
    """Training examples the search processed, all sessions."""
    search_s: float | None = None
    """Seconds spent searching, all sessions."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Summary(Document):
    """summary.json: the outcome of a finished run (absent while it is in progress)."""

    best: BestTrial | None = field(default=None, metadata=_meta(of=BestTrial))
    """The search's best trial."""
    exported: Exported | None = field(default=None, metadata=_meta(of=Exported))
    """What best_model/ holds, or None."""
    certification: Certification | None = field(default=None, metadata=_meta(of=Certification))
    """The certification over seeds, or None."""
    tutorial: dict[str, TutorialEntry] = field(default_factory=dict, metadata=_meta(of=TutorialEntry))
    """The tutorial's presets among the trials: {preset: entry}."""
    counts: dict = field(default_factory=dict)
    """Trials per state, and "total"."""
    wall_s: float | None = None
    """The run's wall time in seconds, all sessions."""
    budget: Budget | None = field(default=None, metadata=_meta(of=Budget))
    """The search's budget and what it used."""
    finished: bool = True
    """True: the run ended and wrote this summary."""
    result: str | None = field(default=None, metadata=_meta(optional=True))
    """The run's result where it has no test split (--test-fraction 0): the exported configuration's
    cross-validated accuracy, "10-fold cross-validated accuracy 84.1% [83.0, 85.2]"; absent otherwise."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    def numbers(self, objective: Objective = OBJECTIVE) -> dict[str, float]:
        """The numbers of its best trial and its exported model, each named "PART.KEY" as summary.json
        spells it ("best.val_accuracy", "exported.test_accuracy", ...)."""
        parts = {"best": self.best, "exported": self.exported}
        return {
            f"{part}.{key}": value
            for part, document in parts.items()
            if document is not None
            for key, value in document.to_json(objective).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }

    @classmethod
    def read(cls, run_dir: RunDir, objective: Objective = OBJECTIVE) -> Summary | None:
        """summary.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.summary_json)
        return None if value is None else cls.from_json(value, objective)

    def write(self, run_dir: RunDir, objective: Objective = OBJECTIVE) -> None:
        """Replace summary.json at once."""
        write_json(run_dir.summary_json, self.to_json(objective))


# ---------------------------------------------------------------- best_model/: card.json and benchmark.json


@dataclass
class Latency(Document):
    """Milliseconds one request of one text took (benchmark.json's models[name].latency_ms)."""

    p50: float | None = None
    """The median."""
    p95: float | None = None
    """The 95th percentile."""
    p99: float | None = None
    """The 99th percentile."""
    mean: float | None = None
    """The mean."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class ServedModel(Document):
    """One model measured for serving in a fresh process (`search.serving.measure`): benchmark.json's
    models[name], and card.json's benchmark for the exported one."""

    load_s: float | None = None
    """Seconds `keras.saving.load_model` took."""
    latency_ms: Latency | None = field(default=None, metadata=_meta(of=Latency))
    """One request of one test text, over the requests timed after warm-up."""
    throughput_per_s: dict[str, float] = field(default_factory=dict)
    """Texts per second at each batch size: {batch size (as text): texts/s}."""
    size_bytes: int | None = None
    """model.keras's size on disk."""
    params: int | None = None
    """The model's parameter count."""
    peak_memory_mib: float | None = None
    """The measuring process's own peak resident memory, MiB (`search.serving.peak_resident_mib`)."""
    threads: int | None = field(default=None, metadata=_meta(optional=True))
    """TensorFlow's threads it was measured with: in card.json's benchmark only (benchmark.json says it once)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Machine(Document):
    """Where a serving benchmark ran (benchmark.json's machine)."""

    cpus: int | None = None
    """CPUs the machine has (os.cpu_count)."""
    processor: str = ""
    """Its processor, as platform.processor() (else platform.machine()) names it."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Benchmark(Document):
    """best_model/benchmark.json: the exported model and the tutorial's two measured for serving
    (python -m search.bench --export RUN_DIR, and the end of a search; `search.serving`)."""

    threads: int | None = None
    """TensorFlow's intra-op and inter-op threads in each measuring process."""
    requests: int | None = None
    """Single-text requests timed for the latency percentiles."""
    texts: int | None = None
    """Texts classified for each batch size's throughput."""
    test_texts: int | None = None
    """Test texts drawn to measure (absent in older files)."""
    repeated: bool = False
    """Whether they were repeated to fill the largest batch (a test split smaller than it)."""
    machine: Machine | None = field(default=None, metadata=_meta(of=Machine))
    """Where it ran."""
    note: str = ""
    """How the tutorial's models were built for it."""
    models: dict[str, ServedModel] = field(default_factory=dict, metadata=_meta(of=ServedModel))
    """{"exported" or a tutorial preset: its numbers}."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def read(cls, run_dir: RunDir) -> Benchmark | None:
        """best_model/benchmark.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.best_model / BENCHMARK_FILE)
        return None if value is None else cls.from_json(value)

    def write(self, run_dir: RunDir) -> None:
        """Replace benchmark.json at once."""
        write_json(run_dir.best_model / BENCHMARK_FILE, self.to_json())


@dataclass
class Card(Document):
    """best_model/card.json: which trial's configuration the exported model is, how it was trained
    and tested, the data it learned, and what it takes and answers (`search.export`)."""

    trial_id: str = ""
    """The trial whose configuration it is."""
    seed: int | None = None
    """The certification seed it was trained with; None for the trial's own weights, or an ensemble."""
    refit: bool | None = field(default=None, metadata=_meta(optional=True))
    """Whether it was refit on train + validation; present once certification exported it."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at the epoch kept (key: the objective's metric, e.g. val_accuracy)."""
    epoch: int | None = None
    """The epoch kept."""
    examples_per_s: float | None = None
    """Training examples per second, mean over epochs."""
    tokens_per_s: float | None = None
    """Real training tokens per second, mean over epochs."""
    certified: Certified | None = field(default=None, metadata=_meta(optional=True, of=Certified))
    """Its certification's means and standard deviations; present once certification exported it."""
    ensemble: Ensemble | None = field(default=None, metadata=_meta(optional=True, of=Ensemble))
    """The mean-logit ensemble of the refits it is (--ensemble); absent otherwise."""
    model: dict = field(default_factory=dict)
    """Its network: models.config.ModelConfig's fields."""
    train: dict = field(default_factory=dict)
    """The training values of its configuration (learning rate, schedule, batch size, max_len)."""
    review_tokens: int | None = None
    """Tokens of each review it keeps: max_len, or fewer where its training's memory held fewer; 0 = whole."""
    params: dict = field(default_factory=dict)
    """Its hyperparameters: {name: value}."""
    test_accuracy: float | None = None
    """Accuracy on the test split."""
    test_examples: int | None = None
    """Reviews in the test split."""
    classes: list[str] | None = field(default=None, metadata=_meta(optional=True))
    """The class names in its output order (absent in cards written before classes were named)."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Its macro-F1 on the test split."""
    test_confusion: list[list[int]] | None = field(default=None, metadata=_meta(optional=True))
    """Test reviews by true class (rows) and predicted class (columns), in `classes` order."""
    data: DataFacts = field(default_factory=DataFacts, metadata=_meta(of=DataFacts))
    """The data it learned, as the run's data facts say it."""
    versions: dict = field(default_factory=dict)
    """Library versions: {library: version}."""
    inputs: str = ""
    """What it takes."""
    outputs: str = ""
    """What model.keras and saved_model/ answer."""
    load: str = ""
    """How to load it."""
    benchmark: ServedModel | None = field(default=None, metadata=_meta(optional=True, of=ServedModel))
    """Its serving numbers and the threads they were measured with, once measured (`search.serving`)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def read(cls, folder: Path, objective: Objective = OBJECTIVE) -> Card | None:
        """FOLDER/card.json (an export's folder: best_model/), or None when absent; ValueError when it
        is not a JSON object."""
        value = read_json(Path(folder) / CARD_FILE)
        return None if value is None else cls.from_json(value, objective)

    def write(self, folder: Path, objective: Objective = OBJECTIVE) -> None:
        """Replace FOLDER/card.json at once."""
        write_json(Path(folder) / CARD_FILE, self.to_json(objective))


# ---------------------------------------------------------------- baseline.json


@dataclass
class BaselineModel(Document):
    """One of the tutorial's models trained the tutorial's way (baseline.json's models[preset])."""

    params: dict = field(default_factory=dict)
    """Its hyperparameters: {name: value}."""
    train: dict = field(default_factory=dict)
    """The training fields it used (search.baseline.RECORDED_TRAIN)."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective after the last epoch (key: e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """The last epoch's model's accuracy on the test split."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Its macro-F1 on the test split (absent in older files)."""
    test_examples: int | None = None
    """Reviews in the test split."""
    examples: int | None = None
    """Training examples processed."""
    examples_per_s: float | None = None
    """Training examples per second, mean over epochs."""
    epochs: list = field(default_factory=list)
    """Per epoch: {epoch, the objective's metric, val_loss, train_accuracy, epoch_s}."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class LinearBaseline(Document):
    """baseline.json's linear: TF-IDF word uni+bigrams with logistic regression (search.linear)."""

    c: float | None = field(default=None, metadata=_meta(key="C"))
    """The inverse regularization strength chosen on the validation split."""
    values: dict = field(default_factory=dict)
    """{C (as text): the objective on the validation split}, every C tried."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective on the validation split at the chosen C (key: e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """Accuracy on the test split of the chosen C refitted on train + validation."""
    test_macro_f1: float | None = None
    """Its macro-F1 on the test split."""
    test_confusion: list | None = None
    """Its confusion matrix on the test split: rows true class, columns predicted."""
    test_examples: int | None = None
    """Reviews in the test split."""
    features: int | None = None
    """Uni- and bigrams in the refitted vocabulary."""
    fit_s: float | None = None
    """Wall seconds of every fit: the C search and the refit."""
    predict_per_s: float | None = None
    """Test reviews classified per second, from raw text (vectorizing included)."""
    cv_folds: int | None = field(default=None, metadata=_meta(optional=True))
    """On a run without a test split: K of the run's recorded folds it was cross-validated on,
    at the chosen C (its out-of-fold predictions: DIR/predictions/cv-linear.csv); absent otherwise."""
    cv_accuracy: float | None = field(default=None, metadata=_meta(optional=True))
    """Its out-of-fold accuracy over train + validation."""
    cv_accuracy_low: float | None = field(default=None, metadata=_meta(optional=True))
    """The lower end of that accuracy's 95% interval (Wilson's)."""
    cv_accuracy_high: float | None = field(default=None, metadata=_meta(optional=True))
    """Its upper end."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Baseline(Document):
    """baseline.json: the tutorial's two models trained as the tutorial trains them, and the linear
    baseline (python -m search.baseline)."""

    models: dict[str, BaselineModel] = field(default_factory=dict, metadata=_meta(of=BaselineModel))
    """{preset: model}."""
    examples: int | None = None
    """Training examples both processed."""
    data_fingerprint: str | None = field(default=None, metadata=_meta(optional=True))
    """The fingerprint of the data they were trained on (absent in older files)."""
    wall_s: float | None = None
    """Wall time in seconds."""
    epochs: int | None = None
    """Epochs each model trained."""
    linear: LinearBaseline | None = field(default=None, metadata=_meta(optional=True, of=LinearBaseline))
    """The linear baseline (absent in older files)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def read(cls, run_dir: RunDir, objective: Objective = OBJECTIVE) -> Baseline | None:
        """baseline.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.baseline_json)
        return None if value is None else cls.from_json(value, objective)

    def write(self, run_dir: RunDir, objective: Objective = OBJECTIVE) -> None:
        """Replace baseline.json at once."""
        write_json(run_dir.baseline_json, self.to_json(objective))
