"""A folder per class (`search.data.aclimdb`): any class names, any number of classes, aclImdb as one
case of it; and the tasks `tools.regimes` writes from the aclImdb archive in that layout."""

import csv
import hashlib
import re
import tarfile
from pathlib import Path

import pytest

from search.data import DataConfig, DataError, ReadOptions, aclimdb, data_fingerprint, prepare, read_reviews
from search.data.sources import source_for
from tools import regimes

from conftest import FULL_ARCHIVE, SAMPLE, tar_archive

FOLDERS = Path(__file__).parent / "data" / "classfolders"
CLASSES = ["cooking", "sport", "weather"]


def _archive(tmp_path: Path, files: dict[str, bytes], name: str = "data.tar.gz") -> str:
    return tar_archive(tmp_path / name, files)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.txt"))}


def _tree(root: Path, files: dict[str, bytes]) -> str:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return str(root)


def test_a_folder_per_class_is_read_with_its_class_names():
    assert source_for(str(FOLDERS)).read is aclimdb.read
    reviews, facts = read_reviews(str(FOLDERS))
    assert set(reviews) == {"train", "test"}
    assert facts.read == {"train": dict.fromkeys(CLASSES, 3), "test": dict.fromkeys(CLASSES, 1)}
    assert reviews["test"].labels.tolist() == CLASSES and reviews["test"].ids.tolist() == [-1, -1, -1]  # no ids in the names
    assert reviews["test"].texts[0] == "Whisk the butter into the sauce off the heat so that it does not split.\n"
    assert facts.folders_skipped is None


def test_its_archive_reads_the_same(tmp_path):
    from_folder, _ = read_reviews(str(FOLDERS))
    from_archive, _ = read_reviews(_archive(tmp_path, {f"topics/{k}": v for k, v in _files(FOLDERS).items()}))
    for split in ("train", "test"):
        assert from_archive[split].texts == from_folder[split].texts
        assert from_archive[split].labels.tolist() == from_folder[split].labels.tolist()


def test_a_validation_folder_is_the_validation_split(tmp_path):
    extra = {f"validation/{c}/v{i}.txt": f"{c} {i}".encode() for c in CLASSES for i in range(2)}
    reviews, facts = read_reviews(_tree(tmp_path / "data", _files(FOLDERS) | extra))
    assert facts.read["val"] == dict.fromkeys(CLASSES, 2) and reviews["val"].texts[0] == "cooking 0"


def test_the_folder_prepares_into_three_classes(tmp_path):
    facts = prepare(DataConfig(source=str(FOLDERS), max_vocab=50, val_block=1), tmp_path / "cache").facts
    assert facts.classes == CLASSES
    assert facts.class_counts["test"] == dict.fromkeys(CLASSES, 1)


def test_aclimdb_is_read_as_before(tmp_path):
    """The sample: classes neg and pos (as strings), ids from the file names, the archive's bytes as
    its fingerprint; train/unsup, with no counterpart in test/, skipped and counted."""
    with tarfile.open(SAMPLE) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}
    unsup = {f"aclImdb/train/unsup/{i}_0.txt": b"unlabelled" for i in range(5)}
    source = _archive(tmp_path, files | unsup)
    reviews, facts = read_reviews(source)
    assert facts.read == {split: {"neg": 120, "pos": 120} for split in ("train", "test")}
    assert facts.folders_skipped == {"train/unsup": 5}
    assert reviews["train"].labels.dtype.kind == "U" and reviews["train"].labels[[0, -1]].tolist() == ["neg", "pos"]
    names = sorted(n for n in files if "/train/" in n)
    assert reviews["train"].ids.tolist() == [int(re.match(r"\d+", Path(n).name).group()) for n in names]
    assert aclimdb.fingerprint(str(SAMPLE), ReadOptions()) == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()


@pytest.mark.skipif(not FULL_ARCHIVE.is_file(), reason="the full archive is not here")
def test_the_full_archives_cache_key_is_as_before():
    assert data_fingerprint(DataConfig(source=str(FULL_ARCHIVE), seed=0)) == "f850d3a814209938"


TRAIN_TEST = {f"{s}/{c}/{i}.txt": b"x" for s in ("train", "test") for c in ("a", "b") for i in range(2)}


@pytest.mark.parametrize(
    "files, message",
    [
        (
            {"notes/readme.txt": b"x"},
            r"no train/<class>/\*\.txt texts found; expected a folder per class, train/<class>/\*\.txt ",
        ),
        ({k: v for k, v in TRAIN_TEST.items() if k.startswith("train")}, r"no test/<class>/\*\.txt texts found"),
        (
            {k: v for k, v in TRAIN_TEST.items() if "/b/" not in k or k.startswith("train")},
            r"the train split has texts of one class only \(a\); at least two class folders under both train/ and test/ are "
            r"needed; train/ folders without a test/ counterpart are not classes \(train/b\)$",
        ),
        (
            TRAIN_TEST | {"test/c/1.txt": b"x", "test/c/2.txt": b"y"},
            r"test/c holds 2 texts of a class that train/ lacks; add train/c/ with training texts, or remove test/c/$",
        ),
        (TRAIN_TEST | {"validation/c/1.txt": b"x"}, r"validation/c holds 1 text of a class that train/ lacks"),
        (
            {f"{t}/{k}": v for t in ("one", "two") for k, v in TRAIN_TEST.items()},
            r"holds 2 dataset trees \(one, two\); point --data at one of them$",
        ),
    ],
)
@pytest.mark.parametrize("where", ["folder", "archive"])
def test_a_wrong_layout_is_refused_with_one_line(tmp_path, files, message, where):
    source = _tree(tmp_path / "data", files) if where == "folder" else _archive(tmp_path, files)
    with pytest.raises(DataError, match="^--data " + re.escape(source) + ": " + message):
        read_reviews(source)


def test_a_file_that_is_no_archive_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(
        DataError,
        match=r"not a table, a folder or a tar archive; give a \.csv, \.tsv, \.jsonl or \.parquet file, "
        r"a folder per class \(train/<class>/\*\.txt",
    ):
        aclimdb.read(str(tmp_path / "notes.txt"), ReadOptions())


# ---------------------------------------------------------------- tools.regimes


def _rating(path: Path) -> int:
    return int(path.stem.rpartition("_")[2])


def test_ratings4_writes_four_classes_by_rating(tmp_path):
    out = tmp_path / "ratings4"
    assert regimes.main(["ratings4", "--archive", str(SAMPLE), "--out", str(out)]) == 0
    ranges = {"1-2": {1, 2}, "3-4": {3, 4}, "7-8": {7, 8}, "9-10": {9, 10}}
    for split in ("train", "test"):
        assert sorted(p.name for p in (out / split).iterdir()) == sorted(ranges)
        for label, ratings in ranges.items():
            assert {_rating(p) for p in (out / split / label).iterdir()} == ratings
    with tarfile.open(SAMPLE) as archive:
        names = sorted(Path(m.name).name for m in archive if m.isfile())
    assert sorted(p.name for p in out.rglob("*.txt")) == names  # every review, its file name kept
    reviews, facts = read_reviews(str(out))
    assert sorted(facts.read["train"]) == sorted(ranges) and sum(facts.read["test"].values()) == 240
    assert (reviews["train"].ids >= 0).all()  # ids kept: validation still takes blocks of them
    manifest = (out / regimes.MANIFEST).read_text()
    assert '"regime": "ratings4"' in manifest and hashlib.sha256(SAMPLE.read_bytes()).hexdigest() in manifest


def test_a_regime_refuses_an_existing_folder_and_leaves_nothing_behind(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert regimes.main(["ratings4", "--archive", str(SAMPLE), "--out", str(out)]) == 2
    assert (
        capsys.readouterr().err
        == f"error: --out {out}: exists and is not an empty folder; give a new folder (nothing was written)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in out.iterdir()] == ["mine.txt"]
    (out / "mine.txt").unlink()  # an empty folder is taken
    assert regimes.main(["full", "--archive", str(SAMPLE), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and len(list(out.rglob("*.txt"))) == 480


def test_a_failed_regime_writes_nothing(tmp_path, capsys):
    files = {"aclImdb/train/pos/1_5.txt": b"middling", "aclImdb/test/neg/2_1.txt": b"bad"}
    assert regimes.main(["ratings4", "--archive", _archive(tmp_path, files), "--out", str(tmp_path / "out")]) == 2
    assert "train/pos/1_5.txt: rating 5, in no class of ratings4" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.tar.gz"]


def test_small_keeps_a_seeded_equal_share_of_training_reviews(monkeypatch):
    monkeypatch.setattr(regimes, "SMALL_TRAIN", 40)
    reviews = regimes.read_archive(SAMPLE)
    kept = regimes.small(reviews, seed=0)
    train = [r for r in kept if r.split == "train"]
    assert [r.label for r in train].count("neg") == [r.label for r in train].count("pos") == 20
    assert len(kept) - len(train) == 240 and kept == regimes.small(reviews, seed=0) != regimes.small(reviews, seed=1)


def test_sentences_writes_a_seeded_table_of_first_sentences(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(regimes, "SENTENCES_PER_CLASS", 30)
    out = tmp_path / "sentences"
    assert regimes.main(["sentences", "--archive", str(SAMPLE), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"table: neg 30, pos 30\nwrote sentences to {out / regimes.TABLE}\n"
    assert sorted(p.name for p in out.iterdir()) == [regimes.MANIFEST, regimes.TABLE]  # no class folders
    with (out / regimes.TABLE).open(newline="") as f:
        rows = list(csv.DictReader(f))
    firsts = {(regimes.first_sentence(r.text.decode()), r.label) for r in regimes.read_archive(SAMPLE)}
    assert len(rows) == 60 and {(row["text"], row["label"]) for row in rows} <= firsts
    reviews = regimes.read_archive(SAMPLE)
    drawn = regimes.sentences(reviews, seed=0)
    assert {r.split for r in drawn} == {regimes.TABLE_SPLIT}
    assert drawn == regimes.sentences(reviews, seed=0) != regimes.sentences(reviews, seed=1)


@pytest.mark.parametrize(
    "text, first",
    [
        ("Great film. Saw it twice!", "Great film."),
        ("What?! No way<br /><br />It was bad.", "What?!"),
        ("Mr.Smith was 3.5 hours long... awful", "Mr.Smith was 3.5 hours long..."),
        ("no end at all", "no end at all"),
    ],
)
def test_short_keeps_the_first_sentence(text, first):
    assert regimes.first_sentence(text) == first
