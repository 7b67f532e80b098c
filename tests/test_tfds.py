"""The default source, --data tfds, through TensorFlow Datasets' own imdb_reviews builder, offline;
and --data tfds:NAME[/CONFIG], through TFDS's builders of other datasets.

TFDS downloads the official aclImdb_v1.tar.gz from Stanford. Here its download cache holds instead a
small archive in the official layout built from the repository's sample; everything after the download
(the builder reading the archive, its three splits written as TFRecords, tfds.load) is TFDS's real code.
Other datasets: their builders' info (features, configs, download URLs) is known without a download;
one tiny dataset, ThreeTopics, is defined here as TFDS defines any dataset, and prepared by TFDS.
"""

import dataclasses
import http.server
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import tomllib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core.download import downloader, resource

from runfiles.documents import DataFacts
from search.data import (
    DATA_ENV,
    TFDS_DATA_ENV,
    TFDS_NAME,
    TFDS_PACKAGES,
    UNFINGERPRINTED,
    VECTOR_FIELDS,
    DataConfig,
    DataError,
    ReadOptions,
    check_source,
    check_tfds_packages,
    prepare,
    read_reviews,
)
from search.data import tfds as tfds_source

from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
UNSUP = 20
"""Unlabelled reviews put in train/unsup/, which the builder turns into its "unsupervised" split."""


@pytest.fixture(scope="module")
def official_archive(tmp_path_factory, sample) -> Path:
    """aclImdb_v1.tar.gz in the official layout: the sample's train/test pos/neg, and train/unsup."""
    path = tmp_path_factory.mktemp("official") / "aclImdb_v1.tar.gz"
    with tarfile.open(sample) as source, tarfile.open(path, "w:gz") as archive:
        members = [m for m in source if m.isfile()]
        for member in members:
            archive.addfile(member, source.extractfile(member))
        for i, member in enumerate(m for m in members if "/test/" in m.name):
            if i == UNSUP:
                break
            text = source.extractfile(member).read()
            info = tarfile.TarInfo(f"aclImdb/train/unsup/{i}_0.txt")
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text))
    return path


def put_in_download_cache(archive: Path, data_dir: Path) -> None:
    """Place `archive` where TFDS caches the download of imdb_reviews' URL, as if it had been downloaded.

    Why the cache: TFDS checks a download against the checksum registered for the official URL
    (84,125,825 bytes), so a local server serving a small archive (through HTTP_PROXY) ends in
    NonMatchingChecksumError, and so does the documented manual dir (<data_dir>/downloads/manual). A file
    cached under the registered checksum's name with its .INFO file beside it is taken as already
    verified: the cache layout that tfds.download.DownloadManager documents, written with TFDS's own
    naming and INFO functions.
    """
    url, url_info = next(iter(tfds.builder_cls(TFDS_NAME).url_infos.items()))
    cached = epath.Path(data_dir) / "downloads" / TFDS_NAME / resource.get_dl_fname(url, url_info.checksum)
    cached.parent.mkdir(parents=True)
    shutil.copyfile(archive, cached)
    resource.write_info_file(url=url, path=cached, dataset_name=TFDS_NAME, original_fname=url_info.filename, url_info=url_info)


@pytest.fixture
def tfds_dir(tmp_path, official_archive) -> Path:
    """A fresh TFDS_DATA_DIR whose download cache holds the official-layout archive; nothing prepared yet."""
    data_dir = tmp_path / "tfds"
    put_in_download_cache(official_archive, data_dir)
    return data_dir


@pytest.fixture
def offline(monkeypatch):
    """HTTP goes to a closed port on 127.0.0.1 and TFDS gives up at once: no test reaches the internet."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(name, proxy)
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(downloader, "MAX_RETRIES", 0)  # TFDS retries 10 times, about 3.5 minutes
        yield


def pairs(reviews: dict, split: str) -> list[tuple[str, int]]:
    texts, labels, _ = reviews[split]
    return sorted(zip(texts, labels.tolist()))


def test_tfds_prepares_the_same_reviews_as_the_archive(tfds_dir, official_archive, offline, monkeypatch):
    monkeypatch.setenv(TFDS_DATA_ENV, str(tfds_dir))
    from_tfds, notes = read_reviews("tfds")
    from_archive, _ = read_reviews(str(official_archive))
    assert notes.reviews_with_replaced_bytes == 0
    for split in ("train", "test"):
        assert len(from_tfds[split][0]) == len(from_archive[split][0]) == 240
        assert pairs(from_tfds, split) == pairs(from_archive, split)
    info = tfds.builder(TFDS_NAME, data_dir=str(tfds_dir)).info
    assert {name: split.num_examples for name, split in info.splits.items()} == {"train": 240, "test": 240, "unsupervised": UNSUP}


def test_a_verbose_smoke_search_on_tfds_finishes_and_shows_tunes_tables(tfds_dir, official_archive, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "search.run", "--data", "tfds", "--smoke", "--trials", "2", "--max-epochs", "1"]
    env = {**os.environ, TFDS_DATA_ENV: str(tfds_dir)}
    result = subprocess.run(
        [*command, "--cpus", "1", "--verbose", "--out", str(out), *TINY],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trial status" in result.stdout + result.stderr  # --verbose brings back what Tune prints (a quiet run hides it)
    assert (tfds_dir / TFDS_NAME / "plain_text" / "1.0.0" / "dataset_info.json").is_file()  # prepared by this run
    facts = DataFacts.from_json(json.loads((out / "run.json").read_text())["data"])
    unrecorded = (*UNFINGERPRINTED, *VECTOR_FIELDS)  # the vectors' facts are their own (DataFacts.embeddings)
    settings = {f.name: getattr(facts, f.name) for f in dataclasses.fields(DataConfig) if f.name not in unrecorded}
    from_archive = prepare(DataConfig(source=str(official_archive), **settings), tmp_path / "archive-cache").facts
    assert facts.source == "tfds" and facts.sizes == from_archive.sizes == {"train": 192, "val": 48, "test": 240}
    assert facts.tokens["test"] == from_archive.tokens["test"]
    assert facts.tokens["train"] + facts.tokens["val"] == from_archive.tokens["train"] + from_archive.tokens["val"]
    assert (out / "summary.json").is_file() and (out / "best_model" / "model.keras").is_file()


def test_tfds_packages_are_declared_and_import():
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {_normalized(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}
    assert {_normalized(p) for p in TFDS_PACKAGES.values()} <= declared
    check_tfds_packages()


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("module", list(TFDS_PACKAGES))
def test_check_source_names_a_missing_package(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # the next import of it fails, as if not installed
    with pytest.raises(DataError) as caught:
        check_source("tfds")
    message = str(caught.value)
    assert f"pip install {TFDS_PACKAGES[module]}" in message and "\n" not in message and "network" not in message


def test_missing_package_fails_the_default_command_with_one_line(tmp_path):
    block = "import runpy, sys; sys.modules['importlib_resources'] = None; runpy.run_module('search.run', run_name='__main__')"
    env = {**{k: v for k, v in os.environ.items() if k != DATA_ENV}, TFDS_DATA_ENV: str(tmp_path / "tfds")}  # the default source
    result = subprocess.run(
        [sys.executable, "-c", block, "--smoke", "--out", str(tmp_path / "run")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --data tfds: the Python package importlib_resources is not installed (no module named 'importlib_resources'); "
        "install it with `pip install importlib_resources`, or reinstall this project with `pip install -e .`"
    )


def test_no_network_says_no_network(tmp_path, offline, monkeypatch):
    monkeypatch.setenv(TFDS_DATA_ENV, str(tmp_path / "tfds"))
    with pytest.raises(DataError) as caught:
        read_reviews("tfds")
    message = str(caught.value)
    assert message.startswith("--data tfds: no network: ") and "\n" not in message
    assert "--data PATH" in message and TFDS_DATA_ENV in message


@pytest.mark.parametrize("case", ["direct", "behind a proxy", "after an unfinished download"])
def test_no_network_is_found_before_ray_starts(tmp_path, monkeypatch, case):
    import time

    from search.data import tfds as tfds_source

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    monkeypatch.setattr(tfds_source, "TFDS_HOST", closed.getsockname())
    monkeypatch.setenv(TFDS_DATA_ENV, str(tmp_path / "tfds"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if case == "behind a proxy":  # a proxy that does not answer either
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{closed.getsockname()[1]}")
    if case == "after an unfinished download":  # what TFDS leaves when its download fails
        unfinished = tmp_path / "tfds" / "downloads" / "ai.stanford.edu_amaas_sentiment_aclImdb_v1.tar.gz.tmp.0123abcd"
        unfinished.mkdir(parents=True)
        (unfinished / "aclImdb_v1.tar.gz").write_bytes(b"\x1f\x8b partial")
    started = time.time()
    with pytest.raises(DataError, match=r"^--data tfds: no network: 127\.0\.0\.1 does not answer.* and .* holds no prepared"):
        check_source("tfds")
    assert time.time() - started < 10
    closed.close()


def test_other_failures_give_their_first_line(tmp_path, official_archive, offline, monkeypatch):
    manual = tmp_path / "tfds" / "downloads" / "manual"  # where TFDS looks for a manually downloaded archive
    manual.mkdir(parents=True)
    shutil.copyfile(official_archive, manual / "aclImdb_v1.tar.gz")  # not the official bytes
    monkeypatch.setenv(TFDS_DATA_ENV, str(tmp_path / "tfds"))
    with pytest.raises(DataError) as caught:
        read_reviews("tfds")
    message = str(caught.value)
    assert message.startswith("--data tfds: TensorFlow Datasets could not prepare imdb_reviews (Artifact http")
    assert "wrong checksum" in message and "\n" not in message and "network" not in message


def test_a_download_of_other_bytes_is_refused(tmp_path, official_archive, offline, monkeypatch):
    """TFDS's own downloader fetches the official URL, here from a server on 127.0.0.1, and checks its checksum."""
    requested, body = [], official_archive.read_bytes()

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv(TFDS_DATA_ENV, str(tmp_path / "tfds"))
        with pytest.raises(DataError, match=r"^--data tfds: TensorFlow Datasets could not prepare imdb_reviews .*wrong checksum"):
            read_reviews("tfds")
    finally:
        server.shutdown()
        server.server_close()
    assert requested == list(tfds.builder_cls(TFDS_NAME).url_infos)


# ---------------------------------------------------------------- --data tfds:NAME[/CONFIG]


@pytest.mark.parametrize(
    "source, spec",
    [
        ("tfds", "imdb_reviews"),
        ("tfds:ag_news_subset", "ag_news_subset"),
        ("tfds:glue/sst2", "glue/sst2"),
        ("tfds:x/y:1.0.0", "x/y:1.0.0"),
    ],
)
def test_tfds_names_a_dataset(source, spec):
    assert tfds_source.matches(source) and tfds_source.dataset_spec(source) == spec


@pytest.mark.parametrize("source", ["tfdsx", "./tfds", "TFDS", "imdb_reviews"])
def test_other_values_are_no_tfds_dataset(source):
    assert not tfds_source.matches(source)


def _features(source: str, **options) -> tuple[str, str]:
    spec = tfds_source.dataset_spec(source)
    return tfds_source.features_of(source, tfds.builder(spec, data_dir="/nonexistent").info.features, ReadOptions(**options))


@pytest.mark.parametrize(
    "source, options, found",
    [
        ("tfds", {}, ("text", "label")),
        ("tfds:glue/sst2", {}, ("sentence", "label")),  # the only Text feature, though not named "text"
        ("tfds:ag_news_subset", {"text_column": "description"}, ("description", "label")),
    ],
)
def test_the_text_and_label_features_are_found_from_the_builders_info(source, options, found):
    assert _features(source, **options) == found


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {},
            r"2 Text features, none named 'text' \(features: label \(ClassLabel\), title \(Text\), description \(Text\)\); "
            r"name its text feature with --text-column$",
        ),
        ({"text_column": "body"}, r"no feature 'body' \(features: .*\); name its text feature with --text-column$"),
        (
            {"text_column": "description", "label_column": "title"},
            r"feature 'title' is a Text, not a ClassLabel .*--label-column$",
        ),
    ],
)
def test_a_feature_missing_ambiguous_or_of_the_wrong_kind_is_refused(options, message):
    with pytest.raises(DataError, match=r"^--data tfds:ag_news_subset: " + message):
        _features("tfds:ag_news_subset", **options)


@pytest.mark.parametrize(
    "source, message",
    [
        ("tfds:no_such_dataset", r"TensorFlow Datasets has no dataset 'no_such_dataset'; name one of its catalog"),
        ("tfds:glue/nope", r"glue has no config 'nope' \(configs: cola, sst2, .*\); give tfds:glue/CONFIG$"),
        ("tfds:", r"names no dataset; give tfds:NAME or tfds:NAME/CONFIG"),
    ],
)
def test_an_unknown_dataset_or_config_is_refused_before_ray_starts(tmp_path, monkeypatch, source, message):
    monkeypatch.setenv(TFDS_DATA_ENV, str(tmp_path / "tfds"))
    with pytest.raises(DataError, match="^--data " + re.escape(source) + ": " + message):
        check_source(source)


def test_no_network_names_the_dataset_and_what_would_work(tmp_path, offline, monkeypatch):
    monkeypatch.setenv(TFDS_DATA_ENV, str(tmp_path / "tfds"))
    with pytest.raises(
        DataError,
        match=r"^--data tfds:glue/sst2: no network: bit\.ly does not answer through the proxy .* holds "
        r"no prepared glue/sst2; pass --data PATH to a local copy .*copy its TFDS_DATA_DIR here$",
    ):
        check_source("tfds:glue/sst2")
    options = ReadOptions(text_column="description")
    with pytest.raises(DataError) as caught:
        read_reviews("tfds:ag_news_subset", options)
    message = str(caught.value)
    assert message.startswith("--data tfds:ag_news_subset: no network: TensorFlow Datasets could not download ag_news_subset (")
    assert "--data PATH" in message and "tfds.builder('ag_news_subset').download_and_prepare()" in message and "\n" not in message


def test_imdb_reviews_by_name_is_tfds(tfds_dir, offline, monkeypatch):
    monkeypatch.setenv(TFDS_DATA_ENV, str(tfds_dir))
    by_name, facts = read_reviews("tfds:imdb_reviews")
    default, _ = read_reviews("tfds")
    assert facts.features == {"text": "text", "label": "label"} and facts.read["train"] == {"neg": 120, "pos": 120}
    for split in ("train", "test"):
        assert by_name[split].texts == default[split].texts and by_name[split].labels.tolist() == default[split].labels.tolist()
    assert {tfds_source.fingerprint(s, ReadOptions()) for s in ("tfds", "tfds:imdb_reviews", "tfds:imdb_reviews/plain_text")} == {
        tfds_source.fingerprint("tfds", ReadOptions())
    }


TOPICS = ["sport", "cooking", "weather"]


class ThreeTopics(tfds.core.GeneratorBasedBuilder):
    """A tiny dataset of three topics, prepared by TFDS: two Text features (title, body) and a
    ClassLabel (topic); each config a shape of splits a TFDS dataset may have."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS: ClassVar = [
        tfds.core.BuilderConfig(name=n) for n in ("given", "no_test", "unlabelled_test", "gaps", "numbered")
    ]

    def _info(self):
        label = (
            tfds.features.ClassLabel(num_classes=3)
            if self.builder_config.name == "numbered"
            else tfds.features.ClassLabel(names=TOPICS)
        )
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({"title": tfds.features.Text(), "body": tfds.features.Text(), "topic": label}),
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config.name
        splits = {
            "train": self._generate_examples("train", 30, missing=2 if config == "gaps" else 0),
            "unsupervised": self._generate_examples("u", 3, missing=3),
        }
        if config == "given":
            splits |= {"validation": self._generate_examples("val", 6), "test": self._generate_examples("test", 9)}
        if config == "unlabelled_test":  # as GLUE's test splits: every label -1
            splits["test"] = self._generate_examples("test", 9, missing=9)
        return splits

    def _generate_examples(self, split: str, n: int, missing: int = 0):
        for i in range(n):
            yield (
                i,
                {"title": f"{split} {i}", "body": f"{TOPICS[i % 3]} text {i} of {split}", "topic": -1 if i < missing else i % 3},
            )


@pytest.fixture(scope="module")
def topics_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tfds-topics")


def _topics(config: str, topics_dir: Path, monkeypatch, **options) -> tuple[dict, dict]:
    monkeypatch.setenv(TFDS_DATA_ENV, str(topics_dir))
    source = f"tfds:three_topics/{config}"
    check_source(source, ReadOptions(text_column="body", **options))  # no download to probe: its builder has no URLs
    return read_reviews(source, ReadOptions(text_column="body", **options))


def test_a_tfds_dataset_with_three_classes_and_a_validation_split(topics_dir, monkeypatch):
    reviews, facts = _topics("given", topics_dir, monkeypatch)
    assert facts.features == {"text": "body", "label": "topic"}
    assert facts.read == {split: dict.fromkeys(sorted(TOPICS), n) for split, n in (("train", 10), ("val", 2), ("test", 3))}
    assert facts.test_split == "" and reviews["val"].ids is None
    assert all(text.startswith(label) for r in reviews.values() for text, label in zip(r.texts, r.labels))


@pytest.mark.parametrize("config", ["no_test", "unlabelled_test"])
def test_without_a_labelled_test_split_one_is_carved_from_train(topics_dir, monkeypatch, config):
    reviews, facts = _topics(config, topics_dir, monkeypatch, test_fraction=0.3)
    assert facts.read == {"train": dict.fromkeys(sorted(TOPICS), 7), "test": dict.fromkeys(sorted(TOPICS), 3)}
    assert facts.test_split == "carved: 30% of train, stratified, seed 0"
    assert (facts.unlabelled_splits or []) == (["test"] if config == "unlabelled_test" else [])
    assert not set(reviews["train"].texts) & set(reviews["test"].texts)


def test_texts_without_a_label_are_refused_or_dropped(topics_dir, monkeypatch):
    with pytest.raises(
        DataError, match=r"^--data tfds:three_topics/gaps: 2 of 30 train texts have no label \(-1\); pass --drop-missing"
    ):
        _topics("gaps", topics_dir, monkeypatch)
    _, facts = _topics("gaps", topics_dir, monkeypatch, drop_missing=True)
    assert facts.dropped_missing == 2 and sum(facts.read["train"].values()) + sum(facts.read["test"].values()) == 28


def test_a_classlabel_without_names_gives_integer_labels(topics_dir, monkeypatch):
    reviews, facts = _topics("numbered", topics_dir, monkeypatch)
    assert reviews["train"].labels.dtype == np.int64 and facts.read["train"] == {"0": 8, "1": 8, "2": 8}
