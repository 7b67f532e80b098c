import dataclasses
import shutil
import tarfile

import numpy as np
import pytest

from models.text import text_vectorizer
from runfiles.documents import DataFacts, Duplicates
from search.data import OOV_ID, DataConfig, DataError, prepare, raw_splits, read_reviews, stratified_split, val_blocks

from conftest import SAMPLE, tar_archive


def test_sample_reads_with_the_official_layout(sample):
    reviews, notes = read_reviews(sample)
    assert {split: len(r.texts) for split, r in reviews.items()} == {"train": 240, "test": 240}
    assert reviews["train"].ids.min() >= 0 and len(set(zip(reviews["train"].ids, reviews["train"].labels))) == 240
    assert notes == DataFacts(read={"train": {"pos": 120, "neg": 120}, "test": {"pos": 120, "neg": 120}})
    assert set(np.unique(reviews["train"][1])) == {"neg", "pos"}
    assert "<br />" in " ".join(reviews["train"][0])


def test_folder_and_archive_give_the_same_reviews(sample, tmp_path):
    with tarfile.open(sample) as archive:
        archive.extractall(tmp_path, filter="data")
    from_folder, _ = read_reviews(str(tmp_path / "aclImdb"))
    from_archive, _ = read_reviews(sample)
    assert from_folder["train"][0] == from_archive["train"][0]
    assert np.array_equal(from_folder["test"][1], from_archive["test"][1])


def test_split_is_stratified_seeded_and_disjoint():
    labels = np.array([0] * 70 + [1] * 30)
    train, val = stratified_split(labels, 0.2, seed=3)
    assert len(val) == 20 and labels[val].sum() == 6
    assert not set(train) & set(val) and len(train) + len(val) == 100
    assert np.array_equal(val, stratified_split(labels, 0.2, seed=3)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.2, seed=4)[1])


def test_split_by_groups_keeps_each_group_on_one_side():
    labels = np.array([0] * 500 + [1] * 500)
    groups = np.concatenate([np.arange(500) // 25, np.arange(500) // 25])  # 20 groups of 25 per class
    train, val = stratified_split(labels, 0.2, seed=3, groups=groups)
    assert len(val) == 200 and labels[val].sum() == 100
    for label in (0, 1):
        own = labels == label
        val_groups, train_groups = set(groups[val][own[val]]), set(groups[train][own[train]])
        assert len(val_groups) == 4 and not val_groups & train_groups  # 4 whole groups, none shared
    assert not np.array_equal(val, stratified_split(labels, 0.2, seed=3)[1])  # review by review differs


def test_validation_holds_whole_blocks_of_review_ids(sample, tmp_path):
    config = DataConfig(source=sample, max_vocab=300, val_block=2000)
    reviews, _ = read_reviews(sample)
    by_text = {t: (i // 2000, label) for t, label, i in zip(*reviews["train"])}
    selected = raw_splits(config)
    blocks = {name: {by_text[t] for t in selected[name][0]} for name in ("train", "val")}
    assert len(blocks["val"] - blocks["train"]) >= 2  # whole blocks of a class in validation only
    assert len(blocks["val"] & blocks["train"]) <= 2  # at most the block that tops each class up
    assert prepare(config, tmp_path).facts.val_split == "by blocks of 2000 review ids"


def test_a_class_in_one_block_is_split_review_by_review():
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert val_blocks(np.array([1, 2, 300, 4, 5, 600]), labels, 250) is not None
    assert val_blocks(np.array([1, 2, 3, 4, 5, 600]), labels, 250) is None  # class 0 shares one block
    assert val_blocks(np.array([1, 2, 300, 4, 5, 600]), labels, 1) is None and val_blocks(None, labels, 250) is None


def test_runs_recorded_before_val_block_keep_their_split(sample, tmp_path):
    old = {"source": sample, "max_vocab": 300, "seed": 0}  # configs.data of a run.json without val_block
    assert DataConfig.recorded(old).val_block == 1
    by_review = prepare(DataConfig.recorded(old), tmp_path)
    assert by_review.facts.val_split == "review by review"
    assert prepare(DataConfig(**old), tmp_path).fingerprint != by_review.fingerprint


def test_prepare_splits_vectorizes_and_caches(sample, tmp_path):
    config = DataConfig(source=sample, max_vocab=500, seed=1)
    first = prepare(config, tmp_path)
    assert first.facts.sizes == {"train": 192, "val": 48, "test": 240}
    assert first.vocabulary[:2] == ["", "[UNK]"] and len(first.vocabulary) == 500
    train = first.splits["train"]
    assert train.tokens.max() < 500 and train.lengths.min() > 0
    assert list(tmp_path.glob("imdb-*.npz")) == [tmp_path / f"imdb-{first.fingerprint}.npz"]
    again = prepare(config, tmp_path)
    assert again.fingerprint == first.fingerprint and again.vocabulary == first.vocabulary
    assert np.array_equal(again.splits["val"].tokens, first.splits["val"].tokens)
    other = prepare(DataConfig(source=sample, max_vocab=500, seed=2), tmp_path)
    assert other.fingerprint != first.fingerprint


def test_trials_never_receive_the_test_split(sample, tmp_path):
    prepared = prepare(DataConfig(source=sample, max_vocab=300), tmp_path)
    assert set(prepared.for_trials().splits) == {"train", "val"}


def test_limit_keeps_both_classes(sample, tmp_path):
    prepared = prepare(DataConfig(source=sample, max_vocab=300, limit=50, test_limit=20), tmp_path)
    assert prepared.facts.sizes == {"train": 40, "val": 10, "test": 20}
    assert set(prepared.splits["train"].labels) == {0.0, 1.0}


@pytest.mark.parametrize("k", [50, 137])
def test_truncated_vocabulary_equals_textvectorization_adapted_at_k(sample, tmp_path, k):
    config = DataConfig(source=sample, max_vocab=1000)
    prepared = prepare(config, tmp_path)
    texts, _ = raw_splits(config)["val"]
    reference = text_vectorizer(max_tokens=k)  # the project's one standardization, adapted at k
    reference.adapt(np.array(raw_splits(config)["train"][0], dtype=object))
    expected = reference(np.array(texts[:20], dtype=object)).numpy()
    truncated = prepared.splits["val"].with_vocab(k)
    for i in range(20):
        ids = truncated.review(i)
        assert np.array_equal(ids, expected[i, : len(ids)]) and not expected[i, len(ids) :].any()
    assert truncated.tokens.max() == k - 1 or (truncated.tokens < k).all()
    assert (truncated.tokens == OOV_ID).sum() >= (prepared.splits["val"].tokens == OOV_ID).sum()


def _archive(tmp_path, files: dict[str, bytes]) -> str:
    return tar_archive(tmp_path / "bad.tar.gz", files)


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    files = {
        f"aclImdb/{s}/{p}/{i}_{r}.txt": b"good film"
        for s in ("train", "test")
        for p, r in (("pos", 9), ("neg", 2))
        for i in range(2)
    }
    files["aclImdb/train/pos/9_10.txt"] = b"caf\xe9 \xff great"
    reviews, notes = read_reviews(_archive(tmp_path, files))
    assert notes.reviews_with_replaced_bytes == 1
    assert "caf\ufffd \ufffd great" in reviews["train"][0]


def _cut_short(tmp, archive) -> str:
    """The first 5,000 bytes of a gzipped tar: what an interrupted download leaves."""
    (tmp / "cut.tar.gz").write_bytes(archive.read_bytes()[:5000])
    return str(tmp / "cut.tar.gz")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: str(tmp / "missing.tar.gz"), "no such file or folder"),
        (lambda tmp: _archive(tmp, {"notes/readme.txt": b"x"}), "aclImdb layout"),
        (
            lambda tmp: _archive(
                tmp, {"aclImdb/train/pos/1_9.txt": b"a", "aclImdb/test/pos/1_9.txt": b"b", "aclImdb/test/neg/1_1.txt": b"c"}
            ),
            "one class only",
        ),
        (
            lambda tmp: (tmp / "plain.txt").write_text("hello") and str(tmp / "plain.txt"),
            "not a table, a folder or a tar archive",
        ),
        (lambda tmp: _cut_short(tmp, SAMPLE), "the archive is damaged or cut short"),
        (lambda tmp: shutil.copy(SAMPLE, tmp / SAMPLE.name) and str(tmp), "only archives (aclImdb_sample.tar.gz)"),
    ],
)
def test_bad_sources_fail_with_one_clear_line(tmp_path, make, message):
    source = make(tmp_path)
    with pytest.raises(DataError) as caught:
        prepare(DataConfig(source=source), tmp_path / "cache")
    text = str(caught.value)
    assert message in text and source in text and "\n" not in text
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


@pytest.mark.parametrize(
    "field, value", [("val_fraction", 1.0), ("max_vocab", 2), ("limit", 1), ("val_block", 0), ("val_block", 10**20)]
)
def test_data_config_rejects_bad_values(field, value):
    with pytest.raises(DataError, match=field.replace("_", "[_-]")):  # the flag's name where it has one
        DataConfig(**{field: value})


def _tree(root, extra: dict[str, bytes] | None = None):
    files = {
        f"aclImdb/{s}/{p}/{i}_{r}.txt": f"{p} review {i} of {s}".encode()
        for s in ("train", "test")
        for p, r in (("pos", 9), ("neg", 2))
        for i in range(3)
    }
    for name, data in {**files, **(extra or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("where", ["folder", "archive"])
def test_hidden_files_and_resource_forks_are_skipped_and_counted(tmp_path, where):
    extra = {
        "aclImdb/train/pos/._101_8.txt": b"\x00\x05\x16\x07 resource fork",
        "aclImdb/test/neg/.draft_1.txt": b"x",
        "aclImdb/.hidden/train/pos/1_9.txt": b"y",
    }
    root = _tree(tmp_path / "tree", extra)
    source = (
        str(root / "aclImdb")
        if where == "folder"
        else _archive(tmp_path, {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.txt")})
    )
    reviews, notes = read_reviews(source)
    assert notes.hidden_files_skipped == 3
    assert notes.read == {"train": {"pos": 3, "neg": 3}, "test": {"pos": 3, "neg": 3}}
    assert not any("resource fork" in text for text in reviews["train"][0])


def test_a_folder_with_two_dataset_trees_is_refused(tmp_path):
    _tree(tmp_path / "data" / "first")
    _tree(tmp_path / "data" / "second")
    with pytest.raises(DataError, match=r"holds 2 dataset trees \(first/aclImdb, second/aclImdb\); point --data at one"):
        read_reviews(str(tmp_path / "data"))


def test_a_byte_order_mark_never_reaches_a_token(tmp_path):
    root = _tree(tmp_path / "tree", {"aclImdb/train/pos/9_10.txt": "\ufeffthe film".encode()})
    reviews, _ = read_reviews(str(root / "aclImdb"))
    assert "the film" in reviews["train"][0]


def test_the_header_names_what_reading_skipped_or_repaired():
    from search.run import _data_text

    facts = DataFacts(sizes={"train": 8, "val": 2, "test": 10}, reviews_with_replaced_bytes=1)
    assert _data_text("D", facts) == "D: 8 train / 2 validation / 10 test reviews; reviews with undecodable bytes replaced: 1"
    facts.reviews_with_replaced_bytes = 0
    assert _data_text("D", facts) == "D: 8 train / 2 validation / 10 test reviews"


def test_what_the_data_holds_is_counted_and_said(tmp_path):
    from search.run import _data_text

    extra = {
        "aclImdb/train/neutral/7_5.txt": b"a third folder",
        "aclImdb/train/unsup/8_0.txt": b"unlabelled",
        "aclImdb/train/pos/5_8.txt": b"<br />!!!",  # no word once standardized
        "aclImdb/test/pos/6_9.txt": b"POS review 1 of train",  # a training review, in other case
    }
    root = _tree(tmp_path / "tree", extra)
    _, notes = read_reviews(str(root / "aclImdb"))
    assert notes.folders_skipped == {"train/neutral": 1, "train/unsup": 1}
    config = DataConfig(source=str(root / "aclImdb"), max_vocab=50, val_block=1, allow_overlap=True)  # 1 of 7: over 5%
    facts = prepare(config, tmp_path / "cache").facts
    assert sum(facts.empty_texts.values()) == 1 and facts.empty_texts["test"] == 0
    assert facts.duplicates.test_in_training == 1 and "allow_overlap" not in facts.to_json()
    text = _data_text("D", facts)
    for said in ("files skipped in folders that are not a class (train/neutral, train/unsup): 2", "texts without a word"):
        assert said in text
    assert "test reviews that copy a training review: 1" in text
    assert facts.copies_note() == " (1 of them copies a training review)"  # beside every test accuracy printed


def test_a_test_split_copied_from_training_is_refused_unless_allowed(sample, tmp_path):
    root = _tree(tmp_path / "tree")
    shutil.rmtree(root / "aclImdb" / "test")
    shutil.copytree(root / "aclImdb" / "train", root / "aclImdb" / "test")
    config = DataConfig(source=str(root / "aclImdb"), max_vocab=50, val_block=1)
    with pytest.raises(DataError, match=r"6 of 6 test reviews \(100\.0%\) are copies of training reviews.*--allow-overlap$"):
        prepare(config, tmp_path / "cache")
    allowed = prepare(dataclasses.replace(config, allow_overlap=True), tmp_path / "cache")
    assert allowed.facts.duplicates.test_in_training == 6 and allowed.fingerprint == _fingerprint(config, tmp_path)
    on_sample = prepare(DataConfig(source=sample, max_vocab=300), tmp_path / "cache").facts.duplicates
    assert on_sample == Duplicates(test_in_training=0, val_in_train=0)


def _fingerprint(config, tmp_path) -> str:
    """The cache key prepare gave `config` (allow_overlap leaves it as it is)."""
    return next((tmp_path / "cache").glob("imdb-*.npz")).stem.removeprefix("imdb-")


def test_splitcheck_sees_movies_grouped_by_id():
    from tools.splitcheck import neighbours

    def film(k: int) -> str:  # two rare capitalized names per film: "Titleab Actorab"
        code = chr(97 + k // 26) + chr(97 + k % 26)
        return f"Title{code} Actor{code}"

    texts = [f"I watched {film(i // 5)} twice" for i in range(600)]  # 5 consecutive reviews per film
    shares = neighbours(texts, np.array([0] * 300 + [1] * 300), np.arange(600))
    assert shares["1 apart"] == pytest.approx(4 / 5, abs=0.01) and shares["100 apart"] == 0.0


@pytest.mark.parametrize("argv", [["--val-block", "abc"], ["--val-block", str(10**20)], ["--data", "tfds"]])
def test_splitcheck_refuses_bad_input_in_one_line(argv, capsys):
    from tools.splitcheck import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
