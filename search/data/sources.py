"""The table from a `--data` value to the source that reads it, and what reading does with any source.

Each source is one row of SOURCES: how to recognize its `--data` value, check it before Ray
starts, fingerprint its content for the cache key, and read its texts and labels, each told the
options its row names (`reviews.LabelOptions`, `reviews.ColumnOptions` or a subclass of them). The
first row that matches wins. A new source is one module under `search/data/` with those four
functions (and, for an option of its own, a subclass of the options it builds on, declaring it
with its docstring), one row here, and its kind of value named in NO_SOURCE: `ReadOptions`,
DataConfig's fields, search.run's flags and the cache key follow from the rows.

`read_reviews` then does the same for every source: labels become classes (`labels.as_classes`),
a test split is carved where the source gives none (`carved_test`), and the reviews are counted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from runfiles.documents import DataFacts
from search.data import aclimdb, tables, tfds
from search.data.labels import as_classes
from search.data.reviews import NO_TEST, ColumnOptions, DataError, LabelOptions, Reviews, counted
from search.data.splitting import emptied, stratified_split, too_few


@dataclass(frozen=True)
class Source:
    """One kind of `--data` value and the functions that handle it (each takes the value and its options)."""

    name: str
    """What the source is, for the reader of this table."""
    matches: Callable[[str], bool]
    """Whether a `--data` value names this source; cheap, and true for at most the values it reads."""
    check: Callable[[str, LabelOptions], None]
    """Fails fast, before Ray starts, when the source cannot work here (raises a one-line DataError)."""
    fingerprint: Callable[[str, LabelOptions], str]
    """A hex digest of the source's content, cheap to compute: part of the prepared data's cache key."""
    read: Callable[[str, LabelOptions], tuple[dict[str, Reviews], DataFacts]]
    """{"train"[|"test"|"val"]: Reviews} (labels as the source spells them) and the facts of the read
    (what was skipped, dropped or repaired); a "val" split is the validation split, none is carved
    from train; without "test", `read_reviews` carves one from train. Raises a one-line DataError."""
    local: bool
    """Whether its `--data` value is a path on this machine (recorded absolute in run.json)."""
    file_ids: bool
    """Whether its reviews carry file ids, so that validation can take blocks of them (`val_block`);
    without, it is split review by review and `val_block` stays out of the cache key."""
    options: type[LabelOptions] = LabelOptions
    """The options its reader takes (LabelOptions or a subclass; their fields are DataConfig fields
    and flags of the same names): those the cache key includes (`search.data.data_fingerprint`);
    the others cannot change what it reads."""

    @classmethod
    def of(cls, name: str, module: ModuleType, local: bool, file_ids: bool, options: type[LabelOptions] = LabelOptions) -> Source:
        """The row of a source module that defines matches, check, fingerprint and read."""
        return cls(name, module.matches, module.check, module.fingerprint, module.read, local, file_ids, options)

    @property
    def option_names(self) -> tuple[str, ...]:
        """The fields of its options."""
        return tuple(f.name for f in dataclasses.fields(self.options))


SOURCES: tuple[Source, ...] = (
    Source.of("TensorFlow Datasets by name", tfds, local=False, file_ids=False, options=ColumnOptions),
    Source.of(
        "CSV, TSV, JSON Lines or Parquet: one file, or a folder of train.*, test.* (validation.*)",
        tables,
        local=True,
        file_ids=False,
        options=tables.TableOptions,
    ),
    Source.of("a folder per class (aclImdb), or a .tar.gz of one", aclimdb, local=True, file_ids=True),
)


def most_derived(classes: list[type]) -> tuple[type, ...]:
    """`classes` without those another of them derives from, in order, each once: bases whose
    fields hold every class's, in an order Python can make one class of."""
    unique = list(dict.fromkeys(classes))
    return tuple(c for c in unique if not any(other is not c and issubclass(other, c) for other in unique))


@dataclass(frozen=True)
class ReadOptions(*most_derived([row.options for row in SOURCES])):
    """What a reader is told: the options of every row of SOURCES (each reader reads those of its
    own row), and the seed of a carved test split."""

    seed: int = 0
    """Seeds the carving of a test split."""


LABEL_FACTS = ("labels_stripped", "labels_normalized", "labels_as_numbers", "labels_case_folded")
"""The data facts that making labels classes fills in (`labels.as_classes`)."""
LABEL_SHOWN = 60
"""The most characters of a class name a refusal shows; a longer one is a text where a label belongs."""
SPLITS_SHARED = 3
"""The fewest rows of a class that a carved test split and a carved validation split can share with training."""
CARVED = "carved:"
"""How the facts' "test_split" begins for a test split carved from training (`carved_text`)."""
NO_TEST_MADE = "none (--test-fraction 0): every row trains or validates, and the result is cross-validated"
"""The facts' "test_split" of a table read as one file with --test-fraction 0 (reviews.NO_TEST)."""
READ_FIELDS = tuple(dict.fromkeys(name for row in SOURCES for name in row.option_names))
"""The options of every source (`ReadOptions` less its seed): DataConfig fields and flags of search.run."""
NO_SOURCE = (
    "no such file or folder; give a .csv, .tsv, .jsonl or .parquet file, a folder of train.<ext> and test.<ext>, "
    "a folder per class (train/<class>/*.txt, test/<class>/*.txt, as aclImdb), a .tar.gz of one, 'tfds' or 'tfds:NAME'"
)
"""What a `--data` value that no row matches is told: every kind of value SOURCES reads."""


def source_for(source: str) -> Source:
    """The first row of SOURCES that matches `source`.

    Raises:
        DataError: one line, when no row matches (a path that does not exist, or is no regular file
        or folder).
    """
    found = next((row for row in SOURCES if row.matches(source)), None)
    path = Path(source).expanduser()
    if found is None and path.exists() and not (path.is_file() or path.is_dir()):
        raise DataError(f"--data {source}: not a regular file (a device, a pipe or a socket); {NO_SOURCE.partition('; ')[2]}")
    if found is None:
        raise DataError(f"--data {source}: {NO_SOURCE}")
    return found


def read_reviews(source: str, options: ReadOptions | None = None) -> tuple[dict[str, Reviews], DataFacts]:
    """{"train"|"test"[|"val"]: (texts, labels, ids)} from a source, and what reading it found:
    reviews read per split and class ("read"), what was skipped, dropped or repaired, how labels
    were cleaned (`labels.as_classes`) and how the test split was made ("test_split", where one
    was carved or given by a file). Labels are classes: strings, or integers where every label of a
    split is one; `ids` are the numbers that begin aclImdb's file names (`<id>_<rating>.txt`), -1
    where a name has none; None for sources without file names (tables, TFDS).

    "tfds" loads TensorFlow Datasets' imdb_reviews from $TFDS_DATA_DIR (default
    ~/tensorflow_datasets), downloading and preparing it there on first use.

    Raises DataError (one line) for a missing or unreadable source, a table without its columns or
    with bad rows (`tables.read`), a folder or archive without a class layout, or one holding more
    than one dataset tree; labels equal up to case (unless `fold_label_case`); a class too rare,
    or a --test-fraction too large, to carve a test split; for "tfds", a missing package (which
    one, and its pip command), no network, or TFDS's own first line.
    """
    options = options or ReadOptions()
    reviews, facts = source_for(source).read(source, options)
    reviews, cleaned = as_classes(source, reviews, options)
    if "test" in reviews and options.test_fraction == NO_TEST:
        raise given_test_split(source)
    if "test" not in reviews:
        reviews, facts.test_split = carved_test(source, reviews, options)
    labelled = {name: getattr(cleaned, name) for name in LABEL_FACTS}
    return reviews, replace(facts, read=counted(reviews), **labelled)


def given_test_split(source: str) -> DataError:
    """The one line refusing --test-fraction 0 on `source`, which gives its own test split."""
    return DataError(
        f"--test-fraction 0: --data {source} gives its own test split, which is the run's; drop --test-fraction "
        "(it takes 0 for one table file, whose result is then cross-validated)"
    )


def carved_test(source: str, reviews: dict[str, Reviews], options: ReadOptions) -> tuple[dict[str, Reviews], str]:
    """`reviews` with a test split carved from train (`options.test_fraction`, stratified by class,
    seeded, each side in the source's order), and how it was made, as the facts say it.

    Raises:
        DataError: one line, for a --test-fraction that would leave a class no training example,
        or a class too rare to be on both sides.
    """
    fraction, train = options.test_fraction, reviews["train"]
    if fraction == NO_TEST:
        return {**reviews, "test": train.subset_of([])}, NO_TEST_MADE
    path = Path(source).expanduser()
    noun = "row" if path.is_file() else "text"
    gone = emptied(train.labels, fraction)
    if gone is not None:
        name, count = gone
        raise DataError(
            f"--test-fraction {fraction:g} leaves too few training {noun}s: all {count:,} of class {str(name)!r} in "
            f"--data {source} would be held out for testing; lower --test-fraction"
        )
    rare = too_few(train.labels, fraction)
    if rare is not None:
        name, count, needed = rare
        if len(str(name)) > LABEL_SHOWN:  # a text where a label belongs
            raise DataError(
                f"--data {source}: class {str(name)[:LABEL_SHOWN]!r}… ({len(str(name)):,} characters) has {count:,} "
                f"{noun}{'s' * (count != 1)}: a text in the label column (files joined with `cat` whose columns are in "
                "another order?); put each file's columns in one order, or check --text-column and --label-column"
            )
        raise DataError(
            f"--data {source}: class {str(name)!r} has {count:,} {noun}{'s' * (count != 1)}, too few for a stratified "
            f"{fraction * 100:g}% test split (it needs {needed}); {_rare_advice(path, noun, count)}"
        )
    kept, held = stratified_split(train.labels, fraction, options.seed)
    return {**reviews, "train": train.subset_of(kept), "test": train.subset_of(held)}, carved_text(source, options)


def _rare_advice(path: Path, noun: str, count: int) -> str:
    """What can give a class of `count` rows (`noun`s) of the file at `path` a carved test split: more
    of them, none; a larger --test-fraction, where `count` can be shared by training, validation
    and testing (SPLITS_SHARED); a folder of files, with validation given too where it cannot."""
    ext = path.suffix
    files = f"train{ext} and test{ext}" if count >= SPLITS_SHARED else f"train{ext}, validation{ext} and test{ext}"
    raise_it = ", raise --test-fraction" if count >= SPLITS_SHARED else ""
    return f"add {noun}s of it, remove them{raise_it}, or give a folder with {files}"


def carves_test(source: str) -> bool:
    """Whether the test split of `source` is carved from its rows (`carved_test`): one table file."""
    return Path(source).expanduser().is_file() and tables.matches(source)


def carved_text(source: str, options: ReadOptions) -> str:
    """How a carved test split was made, as the facts say it: "carved: 20% of reviews.csv, stratified,
    seed 0" (of the file's name; of "train" for a source of several files)."""
    path = Path(source).expanduser()
    whole = path.name if path.is_file() else "train"
    return f"{CARVED} {options.test_fraction * 100:g}% of {whole}, stratified, seed {options.seed}"


def test_split_named(source: str, options: ReadOptions, made: str) -> str:
    """How the test split was made (`made`, the facts' "test_split" of a read, perhaps of another file of
    the same bytes) with the file it names as `source` names it: a carved split's file
    (`carved_text`), a folder's test file (`tables.given_text`)."""
    if made.startswith(CARVED):
        return carved_text(source, options)
    if made.startswith(tables.GIVEN):
        return tables.given_text(source)
    return made


def check_source(source: str, options: ReadOptions | None = None) -> None:
    """Fail fast, before Ray starts, when a source cannot work here: no source matches it, or its
    row's check fails (a table without the text or label column; for "tfds": a missing package, or
    no network and no local copy). `options`: the run's (`DataConfig.read_options`); default ones
    when None.

    Raises:
        DataError: one line that names the source, what is wrong and what would work.
    """
    source_for(source).check(source, options or ReadOptions())


def absolute_source(source: str) -> str:
    """`source` as run.json records it: a path made absolute, so that a resume finds it from any
    working directory; a value that names no local path ("tfds") as given."""
    row, path = next((row for row in SOURCES if row.matches(source)), None), Path(source).expanduser()
    return str(path.resolve()) if row is not None and row.local else source


def source_fingerprint(source: str, options: ReadOptions | None = None) -> str:
    """Identifies the source's content cheaply: file bytes, a folder's names and sizes, or tfds."""
    return source_for(source).fingerprint(source, options or ReadOptions())
