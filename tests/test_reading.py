"""Files as users bring them, read as they meant them: labels that differ by spaces or case, files
joined with `cat`, TSV with stray quotes, JSON Lines without a text, another separator, texts of
emoji only, fractions at their limits, and split sizes that are what was asked. Each file is
written here, small; the records read, the classes and the one-line refusals are asserted exactly."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runfiles.documents import DataFacts
from runfiles.layout import cut
from search.data import DataConfig, DataError, ReadOptions, Reviews, data_fingerprint, prepare, raw_splits, read_reviews, tables
from search.data.labels import as_classes
from search.data.splitting import fewest_for, held_counts

from conftest import FULL_ARCHIVE, SAMPLE, snapshot, tar_archive

WORDS = ["good", "bad", "film", "plot", "actor", "great", "awful", "boring", "lovely", "script"]


def words(i: int) -> str:
    """A text of a few words, different for each i."""
    return " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 6)) + f" number{i}"


def write(path: Path, header: str, rows: list[str]) -> str:
    """A file of a header line and `rows`, each a line as given (no quoting added); its path."""
    path.write_text("".join(f"{line}\n" for line in [header, *rows]), encoding="utf-8")
    return str(path)


def two_classes(n: int, labels=("pos", "neg"), sep=",") -> list[str]:
    return [f"{words(i)}{sep}{labels[i % len(labels)]}" for i in range(n)]


# ---------------------------------------------------------------- 1. labels: whitespace and case


def test_labels_lose_surrounding_whitespace_in_every_source(tmp_path):
    source = write(tmp_path / "spaces.csv", "text,label", two_classes(40, ("pos", " pos", "neg\t", "neg")))
    _, facts = read_reviews(source)
    assert facts.read == {"train": {"neg": 16, "pos": 16}, "test": {"neg": 4, "pos": 4}}
    assert facts.labels_stripped == 20
    files = {f"{s}/{c}/{i}.txt": words(i).encode() for s in ("train", "test") for c in (" pos ", "neg") for i in range(3)}
    _, folders = read_reviews(tar_archive(tmp_path / "folders.tar.gz", files))
    assert folders.read["train"] == {"neg": 3, "pos": 3} and folders.labels_stripped == 6
    integers = {"train": Reviews(list("abcd"), np.array([" 10", "9 ", 9, "9.0"], dtype=object), None)}
    cleaned, _ = as_classes("D", integers, ReadOptions())  # one number each, as pandas would read them
    assert cleaned["train"].labels.dtype == np.int64 and cleaned["train"].labels.tolist() == [10, 9, 9, 9]


def test_labels_equal_up_to_case_are_refused_or_folded_under_the_most_frequent_spelling(tmp_path):
    labels = ["pos"] * 8 + ["POS"] * 3 + ["Pos "] + ["neg"] * 10 + ["NEG"] * 2
    source = write(tmp_path / "case.csv", "text,label", [f"{words(i)},{label}" for i, label in enumerate(labels)])
    with pytest.raises(DataError) as caught:
        read_reviews(source)
    assert str(caught.value) == (
        f"--data {source}: labels that differ only in case would be separate classes: 'neg' (10), 'NEG' (2); "
        "'pos' (8), 'POS' (3), 'Pos' (1); write each class one way, or pass --fold-label-case to merge each group "
        "under its most frequent spelling"
    )
    reviews, facts = read_reviews(source, ReadOptions(fold_label_case=True))
    assert sorted(np.concatenate([r.labels for r in reviews.values()]).tolist()) == ["neg"] * 12 + ["pos"] * 12
    assert facts.labels_case_folded == {"neg": {"NEG": 2}, "pos": {"POS": 3, "Pos": 1}} and facts.labels_stripped == 1
    assert "labels merged up to case (--fold-label-case: NEG → neg, POS, Pos → pos): 6" in facts.data_notes()
    plain = data_fingerprint(DataConfig(source=source))
    assert data_fingerprint(DataConfig(source=source, fold_label_case=True)) != plain  # in the key only when set


# ---------------------------------------------------------------- 2. files joined with `cat`


def test_rows_that_repeat_the_header_are_refused_by_their_lines_or_dropped(tmp_path):
    first = ["text,label", '"a review that spans\ntwo lines",pos', *two_classes(9)]
    second = ["\ufefftext,label", *two_classes(10)]  # a file saved with a byte-order mark, joined after the first
    path = tmp_path / "joined.csv"
    path.write_text("\n".join(first + second + second) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_reviews(str(path))
    assert str(caught.value) == (
        f"--data {path}: lines 13, 24 hold the header again (files joined with `cat`?); remove those rows, or pass "
        "--drop-header-rows to drop them"
    )  # line 13: the quoted line break counts as the file's own line
    reviews, facts = read_reviews(str(path), ReadOptions(drop_header_rows=True))
    assert sum(len(r.texts) for r in reviews.values()) == 30 and facts.header_rows_dropped == 2
    assert set(facts.read["train"]) == {"neg", "pos"}  # no class named 'label'


def test_a_header_row_is_named_before_the_classes_it_would_confuse(tmp_path):
    source = write(tmp_path / "twice.csv", "text,label", [*two_classes(20), "text,label", "text,label"])
    with pytest.raises(DataError, match=r"lines 22, 23 hold the header again"):
        read_reviews(source)  # not "class 'label' has 2 rows"


def test_a_header_with_spaces_around_a_name_says_so(tmp_path):
    source = write(tmp_path / "spaced.csv", "text, label", [line.replace(",", ", ") for line in two_classes(10)])
    with pytest.raises(DataError, match=r"the column ' label' has spaces around its name: pass --label-column ' label', or"):
        read_reviews(source)
    assert read_reviews(source, ReadOptions(label_column=" label"))[1].labels_stripped == 10


# ---------------------------------------------------------------- 3. TSV and quotes; more fields than the header


def test_tsv_is_read_without_quotes_a_line_a_row(tmp_path):
    rows = two_classes(20, sep="\t")
    rows[3], rows[12] = '"' + rows[3], rows[12].replace("\t", '"\t')  # a text opens a quote, a later one closes it
    source = write(tmp_path / "quotes.tsv", "text\tlabel", rows)
    reviews, _ = read_reviews(source)
    texts = reviews["train"].texts + reviews["test"].texts
    assert len(texts) == 20 and '"' + words(3) in texts and words(12) + '"' in texts
    quoted, _ = read_reviews(source, ReadOptions(quoting="csv"))  # as CSV: lines 5 to 14 are one record
    assert sum(len(r.texts) for r in quoted.values()) == 11
    config = DataConfig(source=source)
    assert data_fingerprint(DataConfig(source=source, quoting="csv")) != data_fingerprint(config)
    assert data_fingerprint(DataConfig(source=source, quoting="auto")) == data_fingerprint(config)


@pytest.mark.parametrize(
    "name, lines, message",
    [
        (
            "extra.tsv",
            ["text\tlabel", *two_classes(8, sep="\t"), "a text\twith a tab\tpos", *two_classes(8, sep="\t")],
            r"line 10 holds more fields than the header's 2 \(a tab inside a text\?\); remove or replace them, or check "
            r"--delimiter and --quoting$",
        ),
        (
            "comma.csv",
            ["text,label", '"two\nlines",pos', *two_classes(8), "I liked it, a lot,pos", "x,y,z,neg"],
            r"lines 12, 13 hold more fields than the header's 2 \(',' inside a text\?\); quote such texts",
        ),
        (
            "trailing.csv",
            ["text,label", *[line + "," for line in two_classes(8)]],
            r"lines 2, 3, 4, 5, 6, … \(8 in all\) hold more fields than the header's 2",
        ),
    ],
)
def test_a_line_with_more_fields_than_the_header_is_refused_by_its_line(tmp_path, name, lines, message):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="^--data " + re.escape(str(path)) + ": " + message):
        read_reviews(str(path))


# ---------------------------------------------------------------- 4. a missing text is missing


def test_a_json_lines_record_without_its_text_is_missing_and_an_empty_text_is_kept(tmp_path):
    path = tmp_path / "texts.jsonl"
    records = [{"text": words(i), "label": ["pos", "neg"][i % 2]} for i in range(30)]
    del records[4]["text"], records[20]["text"]
    records[9]["text"], records[11]["text"] = None, ""
    path.write_text("\n".join(json.dumps(r) for r in records[:15]) + "\n\n" + "\n".join(json.dumps(r) for r in records[15:]))
    with pytest.raises(DataError) as caught:
        read_reviews(str(path))
    assert str(caught.value) == (
        f"--data {path}: 3 of 30 rows have no text in column 'text' (absent or null; the first: line 5); fill them in, "
        "or pass --drop-missing to drop them"
    )
    config = DataConfig(source=str(path), drop_missing=True, max_vocab=50)
    reviews, facts = read_reviews(str(path), config.read_options)
    assert sum(len(r.texts) for r in reviews.values()) == 27 and "" in reviews["train"].texts + reviews["test"].texts
    assert (facts.dropped_missing, facts.dropped_missing_texts) == (0, 3)
    prepared = prepare(config, tmp_path / "cache").facts
    assert sum(prepared.empty_texts.values()) == 1
    assert "rows without a text dropped (--drop-missing): 3" in prepared.data_notes()


def test_a_null_parquet_text_is_missing(tmp_path):
    frame = pd.DataFrame({"text": [words(i) for i in range(20)], "label": ["pos", "neg"] * 10})
    frame.loc[6, "text"] = None
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    with pytest.raises(DataError, match=r"1 of 20 rows have no text in column 'text' \(absent or null; the first: row 7\)"):
        read_reviews(str(tmp_path / "t.parquet"))


# ---------------------------------------------------------------- 9. another separator


def test_a_semicolon_separated_csv_is_named_and_read_with_delimiter(tmp_path):
    source = write(tmp_path / "semi.csv", "text;label", two_classes(20, sep=";"))
    with pytest.raises(DataError) as caught:
        read_reviews(source)
    assert str(caught.value) == (
        f"--data {source}: one column named 'text;label'; the file looks ';'-separated, not as CSV is read; "
        "pass --delimiter ';', or save it comma-separated"
    )
    reviews, _ = read_reviews(source, DataConfig(source=source, delimiter=";").read_options)
    assert sum(len(r.texts) for r in reviews.values()) == 20 and words(0) in reviews["train"].texts + reviews["test"].texts
    piped = write(tmp_path / "tabs.csv", "text\tlabel", two_classes(20, sep="\t"))
    with pytest.raises(DataError, match=r"the file looks tab-separated, not as CSV is read; pass --delimiter '\\t'"):
        read_reviews(piped)
    assert DataConfig(source=piped, delimiter="\\t").delimiter == "\t"
    assert len(read_reviews(piped, DataConfig(source=piped, delimiter="\\t").read_options)[0]["train"].texts) == 16


# ---------------------------------------------------------------- 11. texts the standardization empties


def test_texts_of_emoji_only_say_which_characters_were_dropped(tmp_path):
    rows = [f"{words(i) if i % 4 else '😂😂 ❤️ 👍!'},{['pos', 'neg'][i % 2]}" for i in range(40)]
    facts = prepare(DataConfig(source=write(tmp_path / "emoji.csv", "text,label", rows), max_vocab=50), tmp_path / "c").facts
    assert sum(facts.empty_texts.values()) == 10
    assert facts.wordless_characters == {"😂": 20, "❤": 10, "👍": 10, "!": 10}  # the variation selector unread
    assert facts.data_notes()[-1] == (
        "the standardization dropped every character of the texts without a word, most often: 😂 20, ❤ 10, 👍 10, ! 10"
    )


def test_no_training_text_with_a_word_is_refused_with_what_was_dropped(tmp_path):
    source = write(tmp_path / "emoji.csv", "text,label", [f"🙂 {'!' * (i % 3)},{['pos', 'neg'][i % 2]}" for i in range(20)])
    with pytest.raises(DataError) as caught:
        prepare(DataConfig(source=source), tmp_path / "cache")
    assert str(caught.value) == (
        f"--data {source}: none of the 13 training texts holds a word once standardized (the characters dropped most "
        "often: 🙂 20, ! 19); check --text-column, or give texts with words"
    )
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------- 12. split sizes as asked, lists cut in the terminal


def test_held_counts_add_up_to_the_share_asked_and_keep_each_class_on_both_sides():
    rng = np.random.default_rng(0)
    for _ in range(300):
        counts, fraction = rng.integers(3, 40, size=rng.integers(2, 12)), float(rng.choice([0.1, 0.2, 0.25, 0.3, 0.5]))
        rounded = np.array([round(n * fraction) for n in counts])
        if not ((rounded >= 1) & (rounded <= counts - 1)).all():
            continue  # too_few refuses these before any split
        held = held_counts(counts, fraction)
        assert held.sum() == round(counts.sum() * fraction) and ((held >= 1) & (held <= counts - 1)).all()
        assert (np.abs(held - counts * fraction) < 1).all()
        if rounded.sum() == round(counts.sum() * fraction):
            assert (held == rounded).all()  # nothing moves where the classes' own roundings add up
    assert held_counts(np.array([10] * 100), 0.25).sum() == 250  # 100 classes: 2.5 each (rounded to 2: 200)
    assert fewest_for(1e-9) == 500_000_001 and fewest_for(0.99) == 51 and fewest_for(0.2) == 3  # at once, not by counting


SPLITS = {
    (str(SAMPLE), 250): "ad5a496f0c646011",
    (str(SAMPLE), 1): "da90ee2f39999350",
    (str(FULL_ARCHIVE), 250): "e9b1f766964d00e1",
}
"""Digests of raw_splits (texts and labels of train, validation and test) as the split was made
before held_counts: the reference runs' splits, which must not move."""


@pytest.mark.parametrize("source, val_block", list(SPLITS))
def test_imdbs_splits_are_as_they_were(source, val_block):
    if not Path(source).is_file():
        pytest.skip("the full archive is not here")
    import hashlib

    digest = hashlib.sha256()
    for name, (texts, labels) in raw_splits(DataConfig(source=source, val_block=val_block)).items():
        digest.update(name.encode() + "\x00".join(texts).encode() + np.asarray(labels, np.int32).tobytes())
    assert digest.hexdigest()[:16] == SPLITS[source, val_block]


def test_a_tables_key_follows_how_tables_are_read(monkeypatch):
    key = data_fingerprint(DataConfig(source=str(Path(__file__).parent / "data" / "tickets.csv")))
    monkeypatch.setattr(tables, "READING", 1)
    assert data_fingerprint(DataConfig(source=str(Path(__file__).parent / "data" / "tickets.csv"))) != key


def test_long_lists_are_cut_in_the_terminal_and_whole_in_the_report():
    classes = [f"c{i:03d}" for i in range(100)]
    facts = DataFacts(classes=classes, class_counts={"train": dict.fromkeys(classes, 8), "test": dict.fromkeys(classes, 2)})
    terminal, report = facts.class_text(8), facts.class_text()
    assert terminal.startswith("100: c000 1.0% · c001 1.0%") and "c007 1.0% · … (100 in all) of train;" in terminal
    assert "c008" not in terminal and all(name in report for name in classes)
    assert len(terminal) < 300
    assert cut(["a", "b", "c"], 2) == "a, b, … (3 in all)" and cut(["a", "b"], 2) == "a, b"
    skipped = DataFacts(folders_skipped={f"train/x{i}": 1 for i in range(20)})
    assert skipped.data_notes(3) == [
        "files skipped in folders that are not a class (train/x0, train/x1, train/x2, … (20 in all)): 20"
    ]


# ---------------------------------------------------------------- one line and exit 2 from the command, nothing written


def _cli(tmp_path, argv: list[str], capsys) -> str:
    from search import run as search_run

    before = snapshot(tmp_path)
    assert search_run.main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()
    return err


REFUSALS = {
    "labels equal up to case": (
        lambda tmp: write(tmp / "case.csv", "text,label", two_classes(30, ("pos", "Pos", "neg"))),
        [],
        "'pos' (10), 'Pos' (10); write each class one way, or pass --fold-label-case",
    ),
    "header rows": (
        lambda tmp: write(tmp / "cat.csv", "text,label", [*two_classes(20), "text,label", *two_classes(20)]),
        [],
        "line 22 holds the header again (files joined with `cat`?); remove those rows, or pass --drop-header-rows",
    ),
    "a TSV text with a quoted line break": (
        lambda tmp: write(tmp / "q.tsv", "text\tlabel", [*two_classes(20, sep="\t"), '"two\nlines"\tpos']),
        [],
        "1 of 22 rows have no label in column 'label' (the first: row 21); fill them in, or pass --drop-missing to "
        "drop them; a TSV line is one row (quotes are characters): if texts hold quoted line breaks, pass --quoting csv",
    ),
    "a missing text": (
        lambda tmp: write(tmp / "m.jsonl", json.dumps({"label": "pos"}), [json.dumps({"text": words(1), "label": "neg"})]),
        [],
        "1 of 2 rows have no text in column 'text' (absent or null; the first: line 1); fill them in, or pass --drop-missing",
    ),
    "another separator": (
        lambda tmp: write(tmp / "s.csv", "text|label", two_classes(20, sep="|")),
        [],
        "one column named 'text|label'; the file looks '|'-separated, not as CSV is read; pass --delimiter '|'",
    ),
    "a delimiter of two characters": (lambda tmp: str(SAMPLE), ["--delimiter", ";;"], "--delimiter ';;' is invalid"),
    "a test fraction of 0 where the source has its own test split": (
        lambda tmp: str(SAMPLE),
        ["--test-fraction", "0", "--certify", "--cv", "3"],
        "gives its own test split, which is the run's; drop --test-fraction (it takes 0 for one table file",
    ),
    "a test fraction of 0 without cross-validation": (
        lambda tmp: write(tmp / "z.csv", "text,label", two_classes(40)),
        ["--test-fraction", "0", "--certify"],
        "error: --test-fraction 0 leaves no test split: the result is then the cross-validated estimate; add --certify --cv K",
    ),
    "cross-validation without certification": (
        lambda tmp: write(tmp / "c.csv", "text,label", two_classes(40)),
        ["--cv", "3"],
        "error: --cv 3 cross-validates in certification: add --certify",
    ),
    "a negative test fraction": (
        lambda tmp: str(SAMPLE),
        ["--test-fraction", "-0.2"],
        "error: --test-fraction -0.2 is invalid: expected a fraction in (0, 1), or 0 for no test split (with --certify --cv K)",
    ),
    "a validation fraction of 1": (
        lambda tmp: str(SAMPLE),
        ["--val-fraction", "1"],
        "error: --val-fraction 1 is invalid: expected a fraction in (0, 1)",
    ),
    "a test fraction that leaves no training row": (
        lambda tmp: write(tmp / "f.csv", "text,label", two_classes(40)),
        ["--test-fraction", "0.99"],
        "error: --test-fraction 0.99 leaves too few training rows: all 20 of class 'neg' in --data",
    ),
    "a validation fraction that leaves no training review": (
        lambda tmp: write(tmp / "v.csv", "text,label", two_classes(40)),
        ["--val-fraction", "0.99"],
        "error: --val-fraction 0.99 leaves too few training reviews: all 16 of class 'neg' in --data",
    ),
    "no training text with a word": (
        lambda tmp: write(tmp / "e.csv", "text,label", [f",{['pos', 'neg'][i % 2]}" for i in range(20)]),
        [],
        "none of the 13 training texts holds a word once standardized; check --text-column",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_the_command_refuses_in_one_line_before_ray_starts(tmp_path, capsys, monkeypatch, case):
    from search import run as search_run

    make, args, message = REFUSALS[case]
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(search_run, "ray_session", lambda *_: pytest.fail("Ray started before the data was refused"))
    source = make(tmp_path)
    assert message in _cli(tmp_path, ["--data", source, *args], capsys)


def test_a_test_fraction_of_0_is_refused_where_the_source_has_a_test_split_cached_or_not(tmp_path_factory, capsys, monkeypatch):
    """The cache of a class folder is shared by every --test-fraction (its reader takes none): a warm one
    refuses as a cold one does."""
    from search import run as search_run

    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("IMDB_CACHE_DIR", str(cache))
    monkeypatch.setattr(search_run, "ray_session", lambda *_: pytest.fail("Ray started before the data was refused"))
    args = ["--data", str(SAMPLE), "--test-fraction", "0", "--certify", "--cv", "3"]
    cold = _cli(tmp_path_factory.mktemp("cold"), args, capsys)
    prepare(DataConfig(source=str(SAMPLE)), cache)  # the sample prepared as a run with its test split does
    assert _cli(tmp_path_factory.mktemp("warm"), args, capsys) == cold
    assert cold.startswith("error: --test-fraction 0: --data ") and "gives its own test split" in cold


FOLDS = {
    "more folds than a class has labelled examples": (
        two_classes(40) + two_classes(3, labels=("c",)),
        "5",
        "error: --cv 5: class 'c' has 3 labelled training examples; give at most --cv 3",
    ),
    "more folds than rows": (two_classes(40), "1000", "labelled training examples; give at most --cv 20"),
}


@pytest.mark.parametrize("case", list(FOLDS))
def test_more_folds_than_a_class_holds_are_refused_before_ray_starts(tmp_path_factory, capsys, monkeypatch, case):
    """The class counts are known once the data is prepared (its cache, kept for the next run, lies elsewhere)."""
    from search import run as search_run

    rows, k, message = FOLDS[case]
    tmp_path = tmp_path_factory.mktemp("folds")
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setattr(search_run, "ray_session", lambda *_: pytest.fail("Ray started before --cv was refused"))
    source = write(tmp_path / "k.csv", "text,label", rows)
    assert message in _cli(tmp_path, ["--data", source, "--test-fraction", "0", "--certify", "--cv", k], capsys)


# ---------------------------------------------------------------- 13. archives, split names and class folders as users make them


def _class_files(prefix: str = "", splits=("train", "test"), classes=("neg", "pos"), n: int = 3) -> dict[str, bytes]:
    """{member name: bytes} of a folder per class: n texts per split and class, names under `prefix`."""
    return {f"{prefix}{s}/{c}/{i}_7.txt": words(i).encode() for s in splits for c in classes for i in range(n)}


def test_archive_members_named_with_dot_slash_read_as_plain_ones(tmp_path):
    plain = read_reviews(tar_archive(tmp_path / "plain.tar.gz", _class_files("aclImdb/")))[1]
    for prefix in ("./aclImdb/", "./", "aclImdb/./"):
        dotted = read_reviews(tar_archive(tmp_path / "dot.tar.gz", _class_files(prefix)))[1]
        assert dotted.read == plain.read == {"train": {"neg": 3, "pos": 3}, "test": {"neg": 3, "pos": 3}}


def test_a_folder_of_tables_takes_the_validation_split_under_its_other_names(tmp_path):
    for name in ("dev.csv", "val.csv", "valid.csv", "Validation.CSV"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        for stem, n in (("Train", 20), ("test", 10)):
            write(folder / f"{stem}.csv", "text,label", two_classes(n))
        write(folder / name, "text,label", two_classes(6))
        assert read_reviews(str(folder))[1].read == {
            "train": {"neg": 10, "pos": 10},
            "test": {"neg": 5, "pos": 5},
            "val": {"neg": 3, "pos": 3},
        }
    write(folder / "dev.csv", "text,label", two_classes(6))
    with pytest.raises(DataError, match=r"holds two files of one split \(Validation.CSV, dev.csv\); keep one of them$"):
        read_reviews(str(folder))


def test_class_folders_read_validation_folders_subfolders_and_txt_in_any_case_as_keras_does(tmp_path):
    files = _class_files(splits=("train", "test", "valid"))
    files |= {
        "train/pos/more/9_7.txt": b"good film",
        "train/neg/8_7.TXT": b"bad film",
        "train/neg/readme": b"x",
        "test/pos/a.md": b"x",
    }
    reviews, facts = read_reviews(tar_archive(tmp_path / "keras.tar.gz", files))
    assert facts.read == {"train": {"neg": 4, "pos": 4}, "test": {"neg": 3, "pos": 3}, "val": {"neg": 3, "pos": 3}}
    assert facts.other_files_skipped == 2
    assert "files in class folders not ending in .txt, skipped: 2" in facts.data_notes()
    assert sorted(reviews["train"].ids.tolist()) == [0, 0, 1, 1, 2, 2, 8, 9]
    both = _class_files(splits=("train", "test", "val", "validation"))
    with pytest.raises(DataError, match=r"holds 2 validation folders \(val/, validation/\); keep one of them$"):
        read_reviews(tar_archive(tmp_path / "two.tar.gz", both))


# ---------------------------------------------------------------- 14. numbers as labels


def test_labels_that_spell_one_number_are_one_class_as_pandas_reads_them(tmp_path):
    spelled = ["0", "00", "-0", " 0", "0.0", "1", "01", "+1", " 1", "1.0"]
    source = write(tmp_path / "n.csv", "text,label", [f"{words(i)},{spelled[i % 10]}" for i in range(60)])
    reviews, facts = read_reviews(source)
    assert reviews["train"].labels.dtype == np.int64 and facts.read["train"] == {"0": 24, "1": 24}
    assert facts.labels_as_numbers == {"0": {"00": 6, "-0": 6, "0.0": 6}, "1": {"01": 6, "+1": 6, "1.0": 6}}
    assert facts.labels_stripped == 12
    folders = _class_files(classes=("0", "00", "1", "01"))
    assert read_reviews(tar_archive(tmp_path / "n.tar.gz", folders))[1].read["test"] == {"0": 6, "1": 6}


def test_integer_labels_beyond_64_bits_stay_exact_or_are_refused_with_their_line(tmp_path):
    big = 2**63
    source = write(tmp_path / "big.csv", "text,label", [f"{words(i)},{[1, big][i % 2]}" for i in range(40)])
    assert read_reviews(source)[1].read["train"] == {"1": 16, str(big): 16}
    frame = pd.DataFrame({"text": [words(i) for i in range(40)], "label": np.array([1, big + 5] * 20, np.uint64)})
    frame.to_parquet(tmp_path / "big.parquet")
    assert read_reviews(str(tmp_path / "big.parquet"))[1].read["test"] == {"1": 4, str(big + 5): 4}
    lines = [json.dumps({"text": words(i), "label": i % 2}) for i in range(6)] + ['{"text": "a", "label": 100000000000000000000}']
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"big.jsonl: line 7 holds the integer 100000000000000000000, larger than 64 bits"):
        read_reviews(str(tmp_path / "big.jsonl"))


# ---------------------------------------------------------------- 15. parse errors at the file's own line, a BOM in JSON Lines


def test_parse_errors_name_the_line_of_the_file(tmp_path):
    lines = [json.dumps({"text": words(i), "label": i % 2}) for i in range(6)]
    (tmp_path / "bad.jsonl").write_text("\n".join([*lines[:3], "", '{"text": "x", "label": }', *lines[3:]]) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl: line 5 is not JSON \(Expecting value, column 24\); write one JSON object"):
        read_reviews(str(tmp_path / "bad.jsonl"))
    rows = [f'"{words(i)}\nsecond line",{["pos", "neg"][i % 2]}' for i in range(10)]
    source = write(tmp_path / "open.csv", "text,label", [*rows, '"never closed,pos', "more,neg"])
    with pytest.raises(DataError, match=r"open.csv: line 22 opens a quoted field that no later quote closes"):
        read_reviews(source)
    source = write(tmp_path / "open.tsv", "text\tlabel", [*two_classes(10, sep="\t"), '"never closed\tpos', "more\tneg"])
    with pytest.raises(DataError, match=r"open.tsv: line 12 opens a quoted field .*; close or remove it, or drop --quoting csv$"):
        read_reviews(source, ReadOptions(quoting="csv"))


def test_json_lines_with_a_byte_order_mark_read_as_without(tmp_path):
    text = "".join(json.dumps({"text": words(i), "label": ["pos", "neg"][i % 2]}) + "\r\n" for i in range(20))
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "plain.jsonl").write_text(text)
    assert read_reviews(str(tmp_path / "bom.jsonl"))[1].read == read_reviews(str(tmp_path / "plain.jsonl"))[1].read


# ---------------------------------------------------------------- 16. labels that look alike


def test_labels_that_differ_invisibly_are_one_class_and_lookalikes_are_refused(tmp_path):
    spelled = ["café", "cafe\u0301", "neg", "neg\u200b", "\ufeffneg"]
    source = write(tmp_path / "u.csv", "text,label", [f"{words(i)},{spelled[i % 5]}" for i in range(50)])
    _, facts = read_reviews(source)
    assert facts.read["train"] == {"café": 16, "neg": 24} and facts.labels_normalized == 30
    folders = _class_files(classes=("café", "cafe\u0301", "neg"))
    assert read_reviews(tar_archive(tmp_path / "u.tar.gz", folders))[1].read["test"] == {"café": 6, "neg": 3}
    wide = write(tmp_path / "w.csv", "text,label", two_classes(30, ("pos", "ｐｏｓ", "neg")))
    with pytest.raises(DataError, match=r"differ only in case or Unicode compatibility form .*: 'pos' \(10\), 'ｐｏｓ' \(10\);"):
        read_reviews(wide)
    assert read_reviews(wide, ReadOptions(fold_label_case=True))[1].read["train"] == {"neg": 8, "pos": 16}


def test_the_classes_line_shows_invisible_characters_escaped():
    facts = DataFacts(classes=["neg", "po\xa0s"], class_counts={"train": {"neg": 1, "po\xa0s": 3}})
    assert facts.class_text().startswith("2: neg 25.0% · po\\xa0s 75.0% of train")


# ---------------------------------------------------------------- 17. a cache shared by files of the same bytes


def test_cached_facts_name_this_runs_file(tmp_path):
    rows = two_classes(40)
    first, second = write(tmp_path / "first.csv", "text,label", rows), write(tmp_path / "rev iews.csv", "text,label", rows)
    prepare(DataConfig(source=first), tmp_path)
    facts = prepare(DataConfig(source=second), tmp_path).facts
    assert len(list(tmp_path.glob("*.npz"))) == 1
    assert (facts.source, facts.test_split) == (second, "carved: 20% of rev iews.csv, stratified, seed 0")
    for stem in ("train", "test"):
        for folder in (tmp_path / "a", tmp_path / "b"):
            folder.mkdir(exist_ok=True)
            split = rows if stem == "train" else [f"unseen {line}" for line in rows[:10]]
            write(folder / (f"{stem}.csv" if folder.name == "a" else f"{stem.title()}.csv"), "text,label", split)
    prepare(DataConfig(source=str(tmp_path / "a")), tmp_path)
    assert prepare(DataConfig(source=str(tmp_path / "b")), tmp_path).facts.test_split == "given: Test.csv"


# ---------------------------------------------------------------- 18. hints that work


def test_excels_sep_line_names_the_separator(tmp_path):
    source = write(tmp_path / "excel.csv", "sep=;", ["text;label", *two_classes(20, sep=";")])
    assert read_reviews(source)[1].read["train"] == {"neg": 8, "pos": 8}
    assert read_reviews(source, ReadOptions(delimiter=";"))[1].read["train"] == {"neg": 8, "pos": 8}


def test_column_names_with_invisible_characters_are_shown_escaped(tmp_path):
    source = write(tmp_path / "z.csv", "text\u200b,label", two_classes(10))
    with pytest.raises(DataError, match=re.escape(r"(columns found: text\u200b, label); the column 'text\u200b' has invisible")):
        read_reviews(source)


def test_a_device_or_a_pipe_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for source in ("/dev/null", str(tmp_path / "pipe")):
        with pytest.raises(DataError, match=rf"^--data {source}: not a regular file \(a device, a pipe or a socket\); give a"):
            read_reviews(source)


def test_rare_classes_hear_what_can_work(tmp_path):
    pairs = write(tmp_path / "pairs.csv", "text,label", [f"{words(i)},c{i % 5}" for i in range(10)])
    with pytest.raises(DataError, match=r"needs 3\); add rows of it, remove them, or give a folder with train.csv, validation"):
        read_reviews(pairs)
    with pytest.raises(DataError, match=r"training review, too few .* \(it needs 3\); add examples of it or remove them$"):
        prepare(DataConfig(source=pairs, test_fraction=0.5), tmp_path)
    source = write(tmp_path / "f.csv", "text,label", two_classes(40))
    with pytest.raises(DataError, match=r"lower --test-fraction \(its 90% were held out for testing\) or raise --val-fraction$"):
        prepare(DataConfig(source=source, test_fraction=0.9), tmp_path)
    many = write(tmp_path / "many.csv", "text,label", [f"{words(i)},c{i % 10}" for i in range(200)])
    with pytest.raises(DataError, match=r"among the first 20 \(--limit, or --smoke's\), .*, raise --limit \(it overrides"):
        prepare(DataConfig(source=many, limit=20), tmp_path)


def test_a_text_in_the_label_column_is_named_as_such(tmp_path):
    swapped = [f"{['pos', 'neg'][i % 2]},{words(i)} {'long ' * 20}" for i in range(3)]
    source = write(tmp_path / "joined.csv", "text,label", [*two_classes(20), *swapped])
    with pytest.raises(DataError, match=r"characters\) has 1 row: a text in the label column \(files joined with `cat`"):
        read_reviews(source)


def test_separator_flags_for_a_format_without_separators_are_refused(tmp_path):
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({"text": words(i), "label": i % 2}) + "\n" for i in range(20)))
    with pytest.raises(DataError, match=r"--delimiter ';' applies to CSV and TSV only, and this is JSON Lines; drop it$"):
        read_reviews(str(tmp_path / "t.jsonl"), ReadOptions(delimiter=";"))
    pd.DataFrame({"text": [words(i) for i in range(20)], "label": [i % 2 for i in range(20)]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"--quoting csv applies to CSV and TSV only, and this is Parquet; drop it$"):
        read_reviews(str(tmp_path / "t.parquet"), ReadOptions(quoting="csv"))
