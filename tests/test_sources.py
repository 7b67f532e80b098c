"""The table source and the classes of any source: IMDB written as tables reads as the archive does;
K classes named and counted; each kind of bad table refused in one line. No Ray, no training."""

import ast
import csv
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runfiles.cli import ArgumentParser, UsageError, add_fields, field_help
from runfiles.documents import RunFacts
from search.config import configs_from_args, parse_args, recorded_configs, resumed_configs
from search.data import (
    DataConfig,
    DataError,
    ReadOptions,
    Reviews,
    check_source,
    class_counts,
    classes_of,
    data_fingerprint,
    prepare,
    read_reviews,
    select_splits,
    tables,
)
from search.data.reviews import ColumnOptions, LabelOptions
from search.data.sources import READ_FIELDS, SOURCES, most_derived, source_for

from conftest import SAMPLE

TICKETS = Path(__file__).parent / "data" / "tickets.csv"
"""45 support tickets I wrote, 3 unbalanced classes (billing 18, bug 18, praise 9), an extra id column."""
SAMPLE_KEY = "13664ce103b94322"
"""The sample archive's cache key at the default settings, as it was before tables and classes existed."""


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """`frame` in the format `path`'s ending names (TSV as IANA defines it: no quoting)."""
    ext = path.suffix
    if ext == ".csv":
        frame.to_csv(path, index=False)
    elif ext == ".tsv":
        frame.to_csv(path, sep="\t", quoting=csv.QUOTE_NONE, index=False)
    elif ext == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def frame_of(reviews: Reviews, **extra) -> pd.DataFrame:
    return pd.DataFrame({"review": reviews.texts, "sentiment": reviews.labels, **extra})


@pytest.fixture(scope="module")
def sample_reviews() -> dict[str, Reviews]:
    return read_reviews(str(SAMPLE))[0]


def sample_as_tables(reviews: dict[str, Reviews], folder: Path, ext: str) -> str:
    """The sample's train and test splits as train<ext> and test<ext>, rows in the archive's order."""
    folder.mkdir(exist_ok=True)
    for split in ("train", "test"):
        write_table(frame_of(reviews[split], stars=np.arange(len(reviews[split].texts))), folder / f"{split}{ext}")
    return str(folder)


def table_config(source: str, **settings) -> DataConfig:
    return DataConfig(source=source, text_column="review", label_column="sentiment", **settings)


# ---------------------------------------------------------------- IMDB as tables equals IMDB from the archive


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_imdb_as_a_table_gives_the_archives_splits(sample_reviews, tmp_path, ext):
    """Review by review (val_block=1) the archive and the table split alike: same texts, labels and
    order in all three splits. (At the default val_block the archive carves validation by blocks of
    file ids, which a table does not have: see the next test.)"""
    folder = sample_as_tables(sample_reviews, tmp_path / "imdb", ext)
    assert source_for(folder).name.startswith("CSV, TSV, JSON Lines or Parquet")
    from_table, facts = read_reviews(folder, ReadOptions(text_column="review", label_column="sentiment"))
    assert facts.read == {"train": {"neg": 120, "pos": 120}, "test": {"neg": 120, "pos": 120}}
    assert facts.test_split == f"given: test{ext}"
    archive_config, table = DataConfig(source=str(SAMPLE), val_block=1), table_config(folder, val_block=1)
    expected, got = select_splits(sample_reviews, archive_config), select_splits(from_table, table)
    for split in ("train", "val", "test"):
        assert got[split][0] == expected[split][0]
        assert np.array_equal(got[split][1], expected[split][1]) and got[split][1].dtype == np.int32
    classes = classes_of(from_table, folder)
    assert classes == classes_of(sample_reviews, str(SAMPLE)) == ["neg", "pos"]
    assert class_counts(got, classes) == class_counts(expected, classes)


def test_at_the_default_settings_a_table_holds_the_same_reviews_split_review_by_review(sample_reviews, tmp_path):
    """The honest comparison at the defaults: the same test split, and the same training reviews,
    which the archive splits into train and validation by id blocks and the table review by review."""
    folder = sample_as_tables(sample_reviews, tmp_path / "imdb", ".parquet")
    expected = select_splits(sample_reviews, DataConfig(source=str(SAMPLE)))
    got = select_splits(read_reviews(folder, table_config(folder).read_options)[0], table_config(folder))
    assert got["test"][0] == expected["test"][0] and np.array_equal(got["test"][1], expected["test"][1])

    def training(selected):
        return sorted(zip(selected["train"][0] + selected["val"][0], np.concatenate([selected["train"][1], selected["val"][1]])))

    assert training(got) == training(expected)
    assert {split: len(got[split][0]) for split in got} == {split: len(expected[split][0]) for split in expected}


def test_one_file_gives_a_seeded_stratified_test_split(sample_reviews, tmp_path):
    both = pd.concat([frame_of(sample_reviews["train"]), frame_of(sample_reviews["test"])], ignore_index=True)
    source = str(write_table(both, tmp_path / "imdb.csv"))
    options = ReadOptions(text_column="review", label_column="sentiment", test_fraction=0.25, seed=3)
    reviews, facts = read_reviews(source, options)
    assert facts.read == {"train": {"neg": 180, "pos": 180}, "test": {"neg": 60, "pos": 60}}
    assert facts.test_split == "carved: 25% of imdb.csv, stratified, seed 3"
    assert sorted(reviews["train"].texts + reviews["test"].texts) == sorted(both["review"])
    assert not set(reviews["train"].texts) & set(reviews["test"].texts)
    rows = {text: i for i, text in enumerate(both["review"])}
    assert [rows[t] for t in reviews["test"].texts] == sorted(rows[t] for t in reviews["test"].texts)  # the file's order
    again, _ = read_reviews(source, options)
    other, _ = read_reviews(source, dataclasses.replace(options, seed=4))
    assert again["test"].texts == reviews["test"].texts != other["test"].texts


# ---------------------------------------------------------------- classes


def test_a_small_three_class_table_is_prepared_with_named_classes(tmp_path):
    prepared = prepare(DataConfig(source=str(TICKETS), max_vocab=200), tmp_path)
    assert prepared.classes == ["billing", "bug", "praise"]
    counts = prepared.facts.class_counts
    assert (
        {split: sum(c.values()) for split, c in counts.items()} == prepared.facts.sizes == {"train": 29, "val": 7, "test": 9}
    )  # 20% of 45 rows is 9 (the classes' own shares, 3.6 + 3.6 + 1.8, rounded would add up to 10)
    assert counts["test"] == {"billing": 3, "bug": 4, "praise": 2}  # each share kept; of the tie, the first class rounded down
    assert prepared.facts.test_split == "carved: 20% of tickets.csv, stratified, seed 0"
    for split in prepared.splits.values():
        assert split.labels.dtype == np.int32 and set(split.labels) == {0, 1, 2}
    again = prepare(DataConfig(source=str(TICKETS), max_vocab=200), tmp_path)
    assert again.classes == prepared.classes and np.array_equal(again.splits["val"].labels, prepared.splits["val"].labels)


def test_a_cache_from_before_classes_is_prepared_again(tmp_path):
    config = DataConfig(source=str(TICKETS), max_vocab=200)
    prepared = prepare(config, tmp_path)
    cache = tmp_path / f"imdb-{prepared.fingerprint}.npz"
    with np.load(cache) as saved:
        arrays = dict(saved)
    old_facts = {k: v for k, v in prepared.facts.to_json().items() if k not in ("classes", "class_counts")}
    arrays |= {f"{s}_labels": arrays[f"{s}_labels"].astype(np.float32) for s in ("train", "val", "test")}  # as they were
    np.savez(cache, **(arrays | {"facts": np.array(json.dumps(old_facts))}))
    again = prepare(config, tmp_path)
    assert again.classes == prepared.classes and again.splits["train"].labels.dtype == np.int32
    np.savez(cache, **arrays)  # float labels beside today's facts: cast when loaded
    assert prepare(config, tmp_path).splits["test"].labels.dtype == np.int32


@pytest.mark.parametrize(
    "train, classes",
    [
        ([10, 9, 2, 10, 9, 2], ["2", "9", "10"]),  # integers numerically
        (["b", "a", "B", "b", "a", "B"], ["B", "a", "b"]),  # names as strings
        ([1.0, 0.0, 1.0, 0.0], ["0", "1"]),  # whole floats (a column with gaps) as integers
    ],
)
def test_classes_are_the_training_labels_sorted(train, classes):
    reviews = {split: Reviews([f"text {i}" for i in range(len(train))], np.array(train), None) for split in ("train", "test")}
    assert classes_of(reviews, "D") == classes
    selected = select_splits(reviews, DataConfig(source="D", val_fraction=0.5))
    names = [classes[i] for i in selected["test"][1]]
    assert sorted(names) == sorted(str(int(v)) if isinstance(v, float) else str(v) for v in train)


def test_a_validation_file_is_the_validation_split(tmp_path):
    frame = pd.read_csv(TICKETS)
    for name, rows in (("train", frame[:30]), ("validation", frame[30:38]), ("test", frame[38:])):
        write_table(rows, tmp_path / f"{name}.jsonl")
    reviews, _ = read_reviews(str(tmp_path), ReadOptions())
    config = DataConfig(source=str(tmp_path))
    selected = select_splits(reviews, config)
    assert sorted(selected["val"][0]) == sorted(frame.text[30:38]) and len(selected["train"][0]) == 30
    assert prepare(config, tmp_path / "cache").facts.val_split == "given by the source"
    limited = select_splits(reviews, dataclasses.replace(config, limit=19))
    assert (len(limited["train"][0]), len(limited["val"][0])) == (15, 4)  # the limit shared in proportion
    with pytest.raises(DataError, match=r"class '.+' has no training review among the first --limit 2; raise --limit$"):
        select_splits(reviews, dataclasses.replace(config, limit=2))


def test_drop_missing_drops_and_counts_and_empty_texts_are_kept(tmp_path):
    frame = pd.read_csv(TICKETS)
    frame.loc[[3, 9], "label"] = None
    frame.loc[5, "text"] = ""
    source = str(write_table(frame, tmp_path / "tickets.csv"))
    with pytest.raises(DataError, match=r"2 of 45 rows have no label in column 'label' \(the first: row 4\).*--drop-missing"):
        read_reviews(source)
    prepared = prepare(DataConfig(source=source, drop_missing=True, max_vocab=200), tmp_path / "cache")
    assert prepared.facts.dropped_missing == 2 and sum(prepared.facts.sizes.values()) == 43
    assert sum(prepared.facts.empty_texts.values()) == 1


# ---------------------------------------------------------------- recognizing sources, fingerprints, flags


def test_each_value_goes_to_its_row(tmp_path, sample_reviews):
    folder_per_class = tmp_path / "per_class"
    for split in ("train", "test"):
        for label in ("a", "b"):
            (folder_per_class / split / label).mkdir(parents=True)
    assert source_for(str(TICKETS)).name.startswith("CSV")
    assert source_for(sample_as_tables(sample_reviews, tmp_path / "tables", ".jsonl")).name.startswith("CSV")
    assert (
        source_for(str(SAMPLE)).name
        == source_for(str(folder_per_class)).name
        == "a folder per class (aclImdb), or a .tar.gz of one"
    )
    with pytest.raises(DataError, match=r"no such file or folder; give a \.csv, \.tsv, \.jsonl or \.parquet file"):
        source_for(str(tmp_path / "reviews.csv"))


def test_the_archives_key_stays_and_a_tables_key_follows_its_columns(tmp_path):
    assert data_fingerprint(DataConfig(source=str(SAMPLE))) == SAMPLE_KEY
    assert data_fingerprint(DataConfig(source=str(SAMPLE), text_column="body", test_fraction=0.3)) == SAMPLE_KEY  # unused
    source = str(TICKETS)
    plain = data_fingerprint(DataConfig(source=source))
    assert data_fingerprint(DataConfig(source=source, text_column="text", val_block=1)) == plain  # defaults, no ids
    assert data_fingerprint(DataConfig(source=source, test_fraction=0.3)) != plain
    assert data_fingerprint(DataConfig(source=source, drop_missing=True)) != plain
    copy = tmp_path / "copy.csv"
    copy.write_bytes(TICKETS.read_bytes())
    assert data_fingerprint(DataConfig(source=str(copy))) == plain  # content, wherever it lies


@dataclasses.dataclass(frozen=True)
class ShardOptions(ColumnOptions):
    """The options of a made-up source that reads one shard of a dataset: the columns, and its own."""

    shard: int = dataclasses.field(default=0, metadata={"metavar": "N"})
    """Which shard of the dataset to read."""

    def __post_init__(self) -> None:
        if self.shard < 0:
            raise DataError(f"--shard {self.shard} is invalid: expected a shard number >= 0")
        super().__post_init__()


@dataclasses.dataclass(frozen=True)
class WithShards(*most_derived([ColumnOptions, ShardOptions, tables.TableOptions, LabelOptions])):
    """ReadOptions as a row of SOURCES taking ShardOptions would make it (`sources.ReadOptions`)."""


def test_a_sources_own_option_is_one_declaration_beside_its_reader(capsys):
    # The rows' options are the config's fields and search.run's flags, each with its docstring as help.
    assert set(READ_FIELDS) == {name for row in SOURCES for name in row.option_names}
    assert {f.name for f in dataclasses.fields(ReadOptions)} == {*READ_FIELDS, "seed"}
    assert set(READ_FIELDS) <= {f.name for f in dataclasses.fields(DataConfig)}
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--delimiter CHAR The field separator of a CSV or TSV file" in shown and "--text-column COLUMN" in shown
    # A new source's options class joins the others: its option is a field with its help, flag, metavar and checks.
    assert {f.name for f in dataclasses.fields(WithShards)} == set(READ_FIELDS) | {"shard"}
    assert field_help(WithShards)["shard"] == "Which shard of the dataset to read."
    parser = ArgumentParser(prog="made-up")
    add_fields(parser, WithShards, ["shard", "delimiter", "text_column"])
    parsed = vars(parser.parse_args(["--shard", "3", "--delimiter", "tab"]))
    assert WithShards(**parsed) == WithShards(shard=3, delimiter="\t")
    assert "--shard N" in parser.format_help()
    with pytest.raises(DataError, match="--shard -1 is invalid"):
        WithShards(shard=-1)
    with pytest.raises(DataError, match="--delimiter 'ab' is invalid"):  # every class's checks run
        WithShards(shard=1, delimiter="ab")
    with pytest.raises(DataError, match="it is also label_column"):
        WithShards(shard=1, text_column="label")


def test_a_rows_options_enter_its_cache_key_and_no_other_rows():
    by_source = {"tables": str(TICKETS), "folders": str(SAMPLE)}
    for name in READ_FIELDS:
        field = next(f for f in dataclasses.fields(DataConfig) if f.name == name)
        other = {bool: True, str: ";", float: 0.3}[type(field.default) if field.default is not None else str]
        other = {"quoting": "csv", "delimiter": ";"}.get(name, other)
        for kind, source in by_source.items():
            moved = data_fingerprint(DataConfig(source=source, **{name: other})) != data_fingerprint(DataConfig(source=source))
            assert moved == (name in source_for(source).option_names), (name, kind)


def test_only_the_core_carves_a_test_split():
    # A source without a test split leaves it to sources.carved_test: no reader splits reviews itself.
    for row in SOURCES:
        tree = ast.parse(Path(sys.modules[row.read.__module__].__file__).read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "search.data.splitting" not in modules and not imported & {"stratified_split", "carved_test"}, row.name


def test_the_column_flags_reach_the_config_and_stay_on_resume():
    argv = [
        "--data",
        str(TICKETS),
        "--text-column",
        "body",
        "--label-column",
        "topic",
        "--test-fraction",
        "0.3",
        "--drop-missing",
    ]
    search, data = configs_from_args(parse_args(argv))
    assert (data.text_column, data.label_column, data.test_fraction, data.drop_missing) == ("body", "topic", 0.3, True)
    recorded = RunFacts(configs=recorded_configs(search, data, {}))
    assert resumed_configs(parse_args(["--resume", "--label-column", "topic"]), recorded)[1] == data
    changed = "--text-column text (the run's: body), --drop-missing off (the run's: on) cannot change on resume;"
    with pytest.raises(UsageError, match=re.escape(changed)):
        resumed_configs(parse_args(["--resume", "--text-column", "text", "--no-drop-missing"]), recorded)


# ---------------------------------------------------------------- bad input


def _tickets(tmp_path, name="t.csv", change=None) -> str:
    frame = pd.read_csv(TICKETS)
    return str(write_table(change(frame) if change else frame, tmp_path / name))


def _folder(tmp_path, files: dict[str, pd.DataFrame]) -> str:
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, frame in files.items():
        write_table(frame, folder / name)
    return str(folder)


def _split_tickets(tmp_path, ext=".csv", test_change=None, extra=None) -> str:
    frame = pd.read_csv(TICKETS)
    test = frame[36:] if test_change is None else test_change(frame[36:].copy())
    return _folder(tmp_path, {f"train{ext}": frame[:36], f"test{ext}": test, **(extra or {})})


def _with_class_folder(folder: str) -> str:
    (Path(folder) / "train" / "bug").mkdir(parents=True)
    (Path(folder) / "train" / "bug" / "1.txt").write_text("crashes on start")
    return folder


def _raw(tmp_path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


BAD = {
    "no text column": (
        lambda tmp: _tickets(tmp, change=lambda f: f.rename(columns={"text": "body"})),
        {},
        "no text column 'text' (columns found: id, body, label); name the columns with --text-column and --label-column",
    ),
    "no label column": (
        lambda tmp: _tickets(tmp, "t.parquet", change=lambda f: f.rename(columns={"label": "topic"})),
        {},
        "no label column 'label' (columns found: id, text, topic)",
    ),
    "empty file": (lambda tmp: _raw(tmp, "e.csv", ""), {}, "the file is empty"),
    "empty JSON Lines": (lambda tmp: _raw(tmp, "e.jsonl", "\n\n"), {}, "the file is empty"),
    "header only": (lambda tmp: _raw(tmp, "h.csv", "text,label\n"), {}, "holds a header but no rows"),
    "one class": (lambda tmp: _tickets(tmp, change=lambda f: f.assign(label="bug")), {}, "holds one class ('bug', 36 reviews)"),
    "unseen test class": (
        lambda tmp: _split_tickets(tmp, test_change=lambda f: f.assign(label=["question"] * 2 + ["bug"] * 7)),
        {},
        "the test split holds 1 class that training never has: 'question' (2); add training examples of them",
    ),
    "unseen validation class": (
        lambda tmp: _split_tickets(tmp, extra={"validation.csv": pd.DataFrame({"text": ["a", "b"], "label": ["bug", "spam"]})}),
        {},
        "the validation split holds 1 class that training never has: 'spam' (1)",
    ),
    "missing labels": (
        lambda tmp: _tickets(tmp, "t.jsonl", change=lambda f: f.assign(label=f.label.where(f.index % 10 != 4))),
        {},
        "5 of 45 rows have no label in column 'label' (the first: row 5); fill them in, or pass --drop-missing",
    ),
    "a number for a text": (
        lambda tmp: _tickets(tmp, "t.jsonl", change=lambda f: f.assign(text=f.text.astype(object).where(f.index != 6, 7))),
        {},
        "row 7 holds 7 in the text column 'text' (of type int), not text; --text-column must name the column of texts",
    ),
    "a column of numbers for texts": (
        lambda tmp: _tickets(tmp),
        {"text_column": "id"},
        "row 1 holds '1' in the text column 'id' (every value is a number), not text",
    ),
    "a fraction for a label": (
        lambda tmp: _tickets(tmp, "t.parquet", change=lambda f: f.assign(label=f.id / 2)),
        {},
        "row 1 holds 0.5 in the label column 'label', not a class",
    ),
    "two formats": (
        lambda tmp: _split_tickets(tmp, extra={"train.parquet": pd.read_csv(TICKETS)}),
        {},
        "holds tables in 2 formats (test.csv, train.csv, train.parquet); keep one format",
    ),
    "tables beside class folders": (
        lambda tmp: _with_class_folder(_split_tickets(tmp)),
        {},
        "holds tables (test.csv, train.csv) and class folders (train/); keep one dataset per folder",
    ),
    "no test file": (
        lambda tmp: _folder(tmp, {"train.tsv": pd.read_csv(TICKETS)}),
        {},
        "holds no test.tsv (found: train.tsv); add test.tsv, or pass one file as --data to carve a test split from it",
    ),
    "too few for the test split": (
        lambda tmp: _tickets(tmp, change=lambda f: pd.concat([f, f[:2].assign(label="spam")])),
        {},
        "class 'spam' has 2 rows, too few for a stratified 20% test split (it needs 3)",
    ),
    "too few for the validation split": (
        lambda tmp: _few_for_validation(tmp),
        {},
        "class 'spam' has 2 training reviews, too few for a stratified 20% validation split (it needs 3)",
    ),
    "not UTF-8": (lambda tmp: _raw(tmp, "l.csv", b"text,label\ncaf\xe9,a\nbar,b\n"), {}, "is not UTF-8 text"),
    "not a table": (lambda tmp: _raw(tmp, "x.parquet", b"text,label\na,b\n"), {}, "cannot be read as Parquet"),
}


def _few_for_validation(tmp_path) -> str:
    frame = pd.read_csv(TICKETS)
    spam = frame[:2].assign(label="spam")
    return _folder(tmp_path, {"train.csv": pd.concat([frame[:36], spam]), "test.csv": frame[36:]})


@pytest.mark.parametrize("case", list(BAD))
def test_bad_tables_fail_with_one_clear_line(tmp_path, case):
    make, settings, message = BAD[case]
    source = make(tmp_path)
    with pytest.raises(DataError) as caught:
        prepare(DataConfig(source=source, **settings), tmp_path / "cache")
    text = str(caught.value)
    assert message in text and text.startswith(f"--data {source}") and "\n" not in text
    assert not (tmp_path / "cache").exists()


def test_a_missing_column_fails_before_anything_is_read(tmp_path):
    with pytest.raises(DataError, match=r"no text column 'body' \(columns found: id, text, label\)"):
        check_source(str(TICKETS), ReadOptions(text_column="body"))
    check_source(str(TICKETS), ReadOptions())


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"text_column": "label"}, "text_column='label' is invalid: it is also label_column"),
        ({"test_fraction": 1.0}, "--test-fraction 1 is invalid: expected a fraction in (0, 1)"),
        ({"test_fraction": -0.5}, "--test-fraction -0.5 is invalid: expected a fraction in (0, 1), or 0 for no test split"),
        ({"val_fraction": 1.5}, "--val-fraction 1.5 is invalid: expected a fraction in (0, 1)"),
    ],
)
def test_data_config_refuses_bad_column_settings(settings, message):
    with pytest.raises(DataError) as caught:
        DataConfig(**settings)
    assert message in str(caught.value)
