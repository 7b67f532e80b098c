"""The "tfds" sources: TensorFlow Datasets by name, in $TFDS_DATA_DIR, and why it failed when it does.

`--data tfds:NAME[/CONFIG]` reads any TFDS dataset with a text feature and a ClassLabel feature,
found from the builder's `info.features`: the features named by `text_column` and `label_column`
(`reviews.ColumnOptions`; "text" and "label" by default), or else the only Text feature and the only ClassLabel
feature. Its splits "train", "test" and, if present, "validation" (returned as "val") are read; a
split whose labels are all missing (-1, as GLUE's test splits) is skipped, and without a test split
the core carves one from train (`sources.read_reviews`, `test_fraction`). Labels are the ClassLabel's names
(integers when its names are only 0..K-1). `--data tfds` is imdb_reviews, with its fingerprint of
before names were accepted.

TFDS downloads and prepares a dataset on first use. Its failures (a missing package, no network, an
unknown dataset, anything else) each become one actionable line. It keeps no file names, so its
texts have no ids and validation is split text by text.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from runfiles.documents import DataFacts
from search.data.reviews import DATA_ENV, ColumnOptions, DataError, Reviews

TFDS_SOURCE = "tfds"
TFDS_PREFIX = "tfds:"
"""`--data tfds:NAME[/CONFIG]` names any TFDS dataset."""
TFDS_NAME = "imdb_reviews"
"""The dataset `--data tfds` reads."""
TFDS_DATA_ENV = "TFDS_DATA_DIR"
TFDS_VERSION_DIR = Path("imdb_reviews", "plain_text", "1.0.0")
"""Where TFDS prepares imdb_reviews inside its data folder."""
TFDS_HOST = ("ai.stanford.edu", 80)
"""Where TFDS downloads imdb_reviews's archive from."""
TFDS_PACKAGES = {"tensorflow_datasets": "tensorflow-datasets", "importlib_resources": "importlib_resources"}
"""Modules the TFDS path imports, each with the pip requirement in pyproject.toml that installs it."""
TFDS_SPLITS = {"train": "train", "test": "test", "validation": "val"}
"""The TFDS splits read, and the key each is returned under."""
CATALOG = "https://www.tensorflow.org/datasets/catalog"
NAMED_READING = 2
"""How a dataset named by `tfds:NAME` is read and split, in its fingerprint so that data prepared
another way is prepared again: 2 since labels are cleaned (`labels.as_classes`) and a carved split
holds out the share asked (`splitting.held_counts`). imdb_reviews keeps its fingerprint: its labels
and splits are as before."""


def matches(source: str) -> bool:
    """Whether `source` is "tfds" or "tfds:NAME[/CONFIG]"."""
    return source == TFDS_SOURCE or source.startswith(TFDS_PREFIX)


def dataset_spec(source: str) -> str:
    """The TFDS name (NAME or NAME/CONFIG, as tfds.builder takes it) that `source` names: "tfds" →
    "imdb_reviews", "tfds:glue/sst2" → "glue/sst2".

    Raises:
        DataError: for "tfds:" without a name.
    """
    spec = TFDS_NAME if source == TFDS_SOURCE else source.removeprefix(TFDS_PREFIX).strip()
    if not spec:
        raise DataError(f"--data {source}: names no dataset; give tfds:NAME or tfds:NAME/CONFIG (e.g. tfds:ag_news_subset)")
    return spec


def check(source: str, options: ColumnOptions) -> None:
    """Fail fast, before Ray starts: TFDS's packages must import (`check_tfds_packages`), the
    dataset must exist with a text and a ClassLabel feature (`features_of`, from the builder's info:
    no download), and unless TFDS already has it prepared or its downloads cached, its download host
    must answer (a 5 s probe, through the proxy the environment names, as TFDS's downloader goes).

    Raises:
        DataError: one line: a missing package and the pip command that installs it, an unknown
        dataset, a feature missing or ambiguous, or no network.
    """
    check_tfds_packages(source)
    spec = dataset_spec(source)
    builder = _builder(source, spec)
    features_of(source, builder.info.features, options)
    if _is_imdb(spec):
        local, host = _tfds_local_copy(), TFDS_HOST
    else:
        local, host = builder.is_prepared() or _downloads_cached(builder), _download_host(builder)
    if not local and host is not None and not _reachable(host):
        proxy = _proxy_for(host)
        raise DataError(
            f"--data {source}: no network: {host[0]} does not answer"
            + (f" through the proxy {proxy}" if proxy else "")
            + f" and {tfds_data_dir()} holds no prepared {spec}; {_offline_advice(spec)}"
        )


def fingerprint(source: str, options: ColumnOptions) -> str:
    """The prepared dataset's info (checksums, sizes) once TFDS has it, else its name and version,
    with NAMED_READING; imdb_reviews's as before names were accepted. (The features read are the
    row's options.)"""
    spec = dataset_spec(source)
    if _is_imdb(spec):
        info = _tfds_info()
        return hashlib.sha256(info.read_bytes() if info else b"tfds:imdb_reviews:1.0.0").hexdigest()
    builder = _builder(source, spec)
    info = Path(str(builder.data_dir)) / "dataset_info.json"
    content = info.read_bytes() if info.is_file() else str(builder.version).encode()
    return hashlib.sha256(f"tfds:{spec}\nreading {NAMED_READING}\n".encode() + content).hexdigest()


def read(source: str, options: ColumnOptions) -> tuple[dict[str, Reviews], DataFacts]:
    """{"train"|"test"[|"val"]: Reviews} (ids None; labels the ClassLabel's names) from
    $TFDS_DATA_DIR (default ~/tensorflow_datasets), downloading and preparing the dataset there on
    first use, and the facts of reading it: `reviews_with_replaced_bytes`, `features` (the text and
    label features read), `unlabelled_splits` (skipped) and, with `drop_missing`, `dropped_missing`
    (texts without a label, -1, dropped). Without a labelled test split, none is returned
    (`sources.read_reviews` carves one).

    Raises DataError (one line) for a missing package (which one, and its pip command), an unknown
    dataset, a feature missing or ambiguous, no network, no train split, texts without a label
    (unless `drop_missing`), or TFDS's own first line.
    """
    check_tfds_packages(source)
    spec = dataset_spec(source)
    builder = _builder(source, spec)
    text, label = features_of(source, builder.info.features, options)
    loaded = _load(source, spec, builder, (text, label))
    names = builder.info.features[label].names
    out, facts = {}, DataFacts(features={"text": text, "label": label})
    for split, key in TFDS_SPLITS.items():
        if split not in loaded:
            continue
        texts, bad = _decoded(loaded[split][text])
        labelled = np.asarray(loaded[split][label]) >= 0
        if not labelled.any():
            facts.unlabelled_splits = [*(facts.unlabelled_splits or []), split]
            continue
        if not labelled.all():
            texts = _dropped_missing(source, split, texts, labelled, options, facts)
        out[key] = Reviews(texts, _class_names(names, np.asarray(loaded[split][label])[labelled]), None)
        facts.reviews_with_replaced_bytes += bad
    if "train" not in out:
        raise DataError(f"--data {source}: its train split has no labels; choose a dataset or config with a labelled train split")
    return out, facts


def features_of(source: str, features, options: ColumnOptions) -> tuple[str, str]:
    """(text feature, label feature) of a builder's `info.features` (a FeaturesDict): the ones
    `options` names, or, where the default name ("text", "label") is absent, the only Text feature
    and the only ClassLabel feature.

    Raises:
        DataError: one line naming the features found, for a named feature that is absent or of
        the wrong kind, or for no or several candidates where none is named.
    """
    import tensorflow_datasets as tfds  # here, not at the top: only the tfds source needs it

    kinds = (
        ("text", tfds.features.Text, options.text_column, "text"),
        ("label", tfds.features.ClassLabel, options.label_column, "label"),
    )
    found = ", ".join(f"{name} ({type(feature).__name__})" for name, feature in features.items())
    chosen = []
    for what, kind, name, default in kinds:
        flag = f"--{what}-column"
        if name in features:
            if not isinstance(features[name], kind) or features[name].shape != ():
                raise DataError(
                    f"--data {source}: feature {name!r} is a {type(features[name]).__name__}, not a {kind.__name__} "
                    f"(features: {found}); name a {kind.__name__} feature with {flag}"
                )
            chosen.append(name)
            continue
        candidates = [n for n, f in features.items() if isinstance(f, kind) and f.shape == ()]
        if name != default or len(candidates) != 1:
            why = (
                f"no feature {name!r}" if name != default else f"{len(candidates)} {kind.__name__} features, none named {name!r}"
            )
            raise DataError(f"--data {source}: {why} (features: {found}); name its {what} feature with {flag}")
        chosen.append(candidates[0])
    return chosen[0], chosen[1]


def check_tfds_packages(source: str = TFDS_SOURCE) -> None:
    """Import each module in TFDS_PACKAGES (cheap: TensorFlow Datasets loads TensorFlow lazily).

    Raises DataError naming a missing package and the pip command that installs it (or, for
    one installed but broken, its import error's first line).
    """
    for module in TFDS_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError as error:  # not installed, or installed but broken
            raise _tfds_error(error, source, dataset_spec(source)) from error


def tfds_data_dir() -> Path:
    """Where TFDS prepares datasets: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return Path(os.environ.get(TFDS_DATA_ENV) or Path.home() / "tensorflow_datasets").expanduser()


# ---------------------------------------------------------------- the builder and its data


def _is_imdb(spec: str) -> bool:
    return spec in (TFDS_NAME, f"{TFDS_NAME}/plain_text")


def _builder(source: str, spec: str):
    """TFDS's builder of `spec` in tfds_data_dir() (its info is known without a download).

    Raises DataError for an unknown dataset or config, or a missing package.
    """
    import tensorflow_datasets as tfds  # here, not at the top: only the tfds source needs it

    name, _, config = spec.partition(":")[0].partition("/")
    try:
        configs = [c.name for c in tfds.builder_cls(name).BUILDER_CONFIGS]
        if config and config not in configs:
            shown = ", ".join(configs[:20]) + (f", ... ({len(configs)} in all)" if len(configs) > 20 else "")
            advice = f"configs: {shown}); give tfds:{name}/CONFIG" if configs else f"it has none); give tfds:{name}"
            raise DataError(f"--data {source}: {name} has no config {config!r} ({advice}")
        return tfds.builder(spec, data_dir=str(tfds_data_dir()))  # the folder read now: TFDS reads its default once
    except DataError:
        raise
    except Exception as error:  # TFDS raises many kinds; classify by the chain of causes
        raise _tfds_error(error, source, spec) from error


def _load(source: str, spec: str, builder, features: tuple[str, str]) -> dict[str, dict[str, np.ndarray]]:
    """{TFDS split: {feature: values}} of the splits in TFDS_SPLITS that the dataset has, each
    loaded whole, after downloading and preparing it if needed."""
    import tensorflow_datasets as tfds  # here, not at the top: it loads TensorFlow, which only this source needs

    try:
        builder.download_and_prepare()
        splits = [s for s in TFDS_SPLITS if s in builder.info.splits]
        loaded = {s: tfds.as_numpy(builder.as_dataset(split=s, batch_size=-1)) for s in splits}
    except Exception as error:  # TFDS raises many kinds; classify by the chain of causes
        raise _tfds_error(error, source, spec) from error
    if "train" not in loaded:
        raise DataError(
            f"--data {source}: {spec} has no train split (splits: {', '.join(builder.info.splits)}); "
            "choose a dataset or config with one"
        )
    return {s: {f: v[f] for f in features} for s, v in loaded.items()}


def _decoded(raw: np.ndarray) -> tuple[list[str], int]:
    """UTF-8 texts of byte strings, and how many had bad bytes replaced."""
    texts, bad = [], 0
    for value in raw:
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(value.decode("utf-8", errors="replace"))
            bad += 1
    return texts, bad


def _class_names(names: list[str], indices: np.ndarray) -> np.ndarray:
    """Each label's ClassLabel name; integers (int64) when the names are only "0".."K-1", so that
    they sort as numbers."""
    if names == [str(i) for i in range(len(names))]:
        return indices.astype(np.int64)
    return np.array(names, dtype=str)[indices]


def _dropped_missing(source: str, split: str, texts: list[str], labelled: np.ndarray, options: ColumnOptions, facts: DataFacts):
    """The texts of `split` that have a label, the others counted in `facts.dropped_missing`.

    Raises DataError when some have none and `options.drop_missing` is off.
    """
    missing = int((~labelled).sum())
    if not options.drop_missing:
        raise DataError(
            f"--data {source}: {missing:,} of {len(texts):,} {split} texts have no label (-1); pass --drop-missing to drop them"
        )
    facts.dropped_missing = (facts.dropped_missing or 0) + missing
    return [t for t, keep in zip(texts, labelled) if keep]


# ---------------------------------------------------------------- a local copy, or the network


def _tfds_info() -> Path | None:
    """The prepared imdb_reviews's dataset_info.json (version, split sizes, checksums), if any."""
    info = tfds_data_dir() / TFDS_VERSION_DIR / "dataset_info.json"
    return info if info.is_file() else None


def _tfds_local_copy() -> bool:
    """Whether TFDS can prepare imdb_reviews without the network: prepared, or its archive downloaded
    whole (a download TFDS left unfinished, `...aclImdb_v1.tar.gz.tmp.<hex>/`, does not count)."""
    downloads = tfds_data_dir() / "downloads"
    whole = (p for p in downloads.glob("**/*aclImdb*") if not any(".tmp." in part for part in p.relative_to(downloads).parts))
    return _tfds_info() is not None or any(whole)


def _downloads_cached(builder) -> bool:
    """Whether every file the builder's class registers a checksum for is in TFDS's download cache
    (under the names TFDS gives them), so that preparing it needs no network."""
    from tensorflow_datasets.core.download import resource  # here, not at the top: only the tfds source needs it

    infos = type(builder).url_infos or {}
    downloads = tfds_data_dir() / "downloads"
    names = {resource.get_dl_fname(url, info.checksum) for url, info in infos.items()}
    return bool(names) and all(any(downloads.glob(f"**/{name}")) for name in names)


def _download_host(builder) -> tuple[str, int] | None:
    """The host (and port) of the first URL the builder's class registers, or None when it registers none."""
    infos = type(builder).url_infos or {}
    if not infos:
        return None
    url = urlsplit(next(iter(infos)))
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def _url(address: tuple[str, int]) -> str:
    return f"{'https' if address[1] == 443 else 'http'}://{address[0]}:{address[1]}/"


def _proxy_for(address: tuple[str, int]) -> str | None:
    """The proxy the environment names for the download URL (HTTP_PROXY and the like, NO_PROXY heeded), or None."""
    import requests  # here, not at the top: only the tfds source needs it

    proxies = requests.utils.get_environ_proxies(_url(address))
    return proxies.get("https" if address[1] == 443 else "http")


def _reachable(address: tuple[str, int], timeout_s: float = 5.0) -> bool:
    """Whether an HTTP request to `address` gets an answer within `timeout_s`, directly or through
    the environment's proxy; a proxy's own failure (407, or 5xx: it could not reach the host) is no answer."""
    import requests  # here, not at the top: only the tfds source needs it

    try:
        response = requests.head(_url(address), timeout=timeout_s, allow_redirects=False)
    except requests.RequestException:
        return False
    return response.status_code < 500 and response.status_code != 407


# ---------------------------------------------------------------- failures as one line


def _offline_advice(spec: str) -> str:
    """What works without the network, for `spec`."""
    if _is_imdb(spec):
        return (
            f"pass --data PATH to an aclImdb folder or aclImdb_v1.tar.gz (or set {DATA_ENV}), "
            f"or prepare {TFDS_NAME} on a machine with internet and copy its {TFDS_DATA_ENV} here"
        )
    return (
        f"pass --data PATH to a local copy (a table, or a folder per class), or prepare {spec} on a machine with internet "
        f"(tfds.builder({spec!r}).download_and_prepare()) and copy its {TFDS_DATA_ENV} here"
    )


def _tfds_error(error: Exception, source: str = TFDS_SOURCE, spec: str = TFDS_NAME) -> DataError:
    """One actionable line for a failure of TFDS: a missing package, an unknown dataset, no network,
    or anything else."""
    chain = _causes(error)
    missing = next((e for e in chain if isinstance(e, ModuleNotFoundError) and e.name), None)
    if missing is not None:
        return _missing_package(missing, source)
    if any(type(e).__name__ == "DatasetNotFoundError" for e in chain):
        return DataError(
            f"--data {source}: TensorFlow Datasets has no dataset {spec.partition('/')[0]!r}; "
            f"name one of its catalog ({CATALOG}) as tfds:NAME or tfds:NAME/CONFIG"
        )
    if any(_is_offline(e) for e in chain):
        return DataError(
            f"--data {source}: no network: TensorFlow Datasets could not download {spec} ({_first_line(chain[-1])}); "
            + _offline_advice(spec)
        )
    return DataError(f"--data {source}: TensorFlow Datasets could not prepare {spec} ({_first_line(error)})")


def _missing_package(error: ModuleNotFoundError, source: str) -> DataError:
    module = error.name.partition(".")[0]
    package = TFDS_PACKAGES.get(module, module)
    return DataError(
        f"--data {source}: the Python package {package} is not installed (no module named {module!r}); "
        f"install it with `pip install {package}`, or reinstall this project with `pip install -e .`"
    )


def _causes(error: BaseException) -> list[BaseException]:
    chain = [error]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def _is_offline(error: BaseException) -> bool:
    """A failure to reach a host: refused, unresolved, timed out, or a proxy that does not answer."""
    import requests  # here, not at the top: only a failed TFDS load needs it

    offline = (ConnectionError, TimeoutError, socket.gaierror, requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    return isinstance(error, offline)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:400] if text else type(error).__name__
