"""The "tfds" source: TensorFlow Datasets' imdb_reviews, in $TFDS_DATA_DIR, and why it failed when it does.

TFDS downloads the official aclImdb archive and prepares it on first use. Its failures (a missing
package, no network, anything else) each become one actionable line. It keeps no file names, so its
reviews have no ids and validation is split review by review.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
from pathlib import Path

import numpy as np

from search.data.reviews import DATA_ENV, DataError, Reviews, counted

TFDS_SOURCE = "tfds"
TFDS_NAME = "imdb_reviews"
TFDS_DATA_ENV = "TFDS_DATA_DIR"
TFDS_VERSION_DIR = Path("imdb_reviews", "plain_text", "1.0.0")
"""Where TFDS prepares imdb_reviews inside its data folder."""
TFDS_HOST = ("ai.stanford.edu", 80)
"""Where TFDS downloads the official archive from."""
TFDS_PACKAGES = {"tensorflow_datasets": "tensorflow-datasets", "importlib_resources": "importlib_resources"}
"""Modules the TFDS path imports, each with the pip requirement in pyproject.toml that installs it."""


def matches(source: str) -> bool:
    """Whether `source` is "tfds"."""
    return source == TFDS_SOURCE


def check(source: str) -> None:
    """Fail fast, before Ray starts: TFDS's packages must import (`check_tfds_packages`), and unless
    TFDS already has imdb_reviews prepared or its whole archive downloaded, the download host must
    answer (a 5 s probe, through the proxy the environment names, as TFDS's downloader goes).

    Raises:
        DataError: one line: the missing package and the pip command that installs it, or no network.
    """
    check_tfds_packages()
    if not _tfds_local_copy() and not _reachable(TFDS_HOST):
        proxy = _proxy_for(TFDS_HOST)
        raise DataError(
            f"--data tfds: no network: {TFDS_HOST[0]} does not answer"
            + (f" through the proxy {proxy}" if proxy else "")
            + f" and {tfds_data_dir()} holds no prepared "
            f"{TFDS_NAME}; pass --data PATH to an aclImdb folder or aclImdb_v1.tar.gz (or set {DATA_ENV}), "
            f"or prepare {TFDS_NAME} on a machine with internet and copy its {TFDS_DATA_ENV} here"
        )


def fingerprint(source: str) -> str:
    """The prepared dataset's info (checksums, sizes) once TFDS has it, else its name and version."""
    info = _tfds_info()
    return hashlib.sha256(info.read_bytes() if info else b"tfds:imdb_reviews:1.0.0").hexdigest()


def read(source: str) -> tuple[dict[str, Reviews], dict]:
    """{"train"|"test": Reviews} (ids None) from $TFDS_DATA_DIR (default ~/tensorflow_datasets),
    downloading and preparing imdb_reviews there on first use, and the facts of reading it.

    Raises DataError (one line) for a missing package (which one, and its pip command), no
    network, or TFDS's own first line.
    """
    return counted(_read_tfds(), replaced=0, hidden=0)


def check_tfds_packages() -> None:
    """Import each module in TFDS_PACKAGES (cheap: TensorFlow Datasets loads TensorFlow lazily).

    Raises DataError naming a missing package and the pip command that installs it (or, for
    one installed but broken, its import error's first line).
    """
    for module in TFDS_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError as error:  # not installed, or installed but broken
            raise _tfds_error(error) from error


def tfds_data_dir() -> Path:
    """Where TFDS prepares datasets: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return Path(os.environ.get(TFDS_DATA_ENV) or Path.home() / "tensorflow_datasets").expanduser()


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


def _url(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}/"


def _proxy_for(address: tuple[str, int]) -> str | None:
    """The proxy the environment names for the download URL (HTTP_PROXY and the like, NO_PROXY heeded), or None."""
    import requests  # here, not at the top: only the tfds source needs it

    return requests.utils.get_environ_proxies(_url(address)).get("http")


def _reachable(address: tuple[str, int], timeout_s: float = 5.0) -> bool:
    """Whether an HTTP request to `address` gets an answer within `timeout_s`, directly or through
    the environment's proxy; a proxy's own failure (407, or 5xx: it could not reach the host) is no answer."""
    import requests  # here, not at the top: only the tfds source needs it

    try:
        response = requests.head(_url(address), timeout=timeout_s, allow_redirects=False)
    except requests.RequestException:
        return False
    return response.status_code < 500 and response.status_code != 407


def _read_tfds() -> dict[str, Reviews]:
    check_tfds_packages()
    import tensorflow_datasets as tfds  # here, not at the top: it loads TensorFlow, which only this source needs

    data_dir = os.environ.get(TFDS_DATA_ENV)  # read now: TFDS reads its default once, when imported
    try:
        train, test = tfds.load(TFDS_NAME, split=["train", "test"], as_supervised=True, batch_size=-1, data_dir=data_dir)
    except Exception as error:  # TFDS raises many kinds; classify by the chain of causes
        raise _tfds_error(error) from error
    out = {}
    for split, (texts, labels) in (("train", train), ("test", test)):
        texts = [t.decode("utf-8", errors="replace") for t in texts.numpy()]
        out[split] = Reviews(texts, labels.numpy().astype(np.int8), None)
    return out


def _tfds_error(error: Exception) -> DataError:
    """One actionable line for a failure of TFDS: a missing package, no network, or anything else."""
    chain = _causes(error)
    missing = next((e for e in chain if isinstance(e, ModuleNotFoundError) and e.name), None)
    if missing is not None:
        return _missing_package(missing)
    if any(_is_offline(e) for e in chain):
        return DataError(
            f"--data tfds: no network: TensorFlow Datasets could not download {TFDS_NAME} ({_first_line(chain[-1])}); "
            f"pass --data PATH to an aclImdb folder or aclImdb_v1.tar.gz (or set {DATA_ENV}), "
            f"or prepare {TFDS_NAME} on a machine with internet and copy its {TFDS_DATA_ENV} here"
        )
    return DataError(f"--data tfds: TensorFlow Datasets could not prepare {TFDS_NAME} ({_first_line(error)})")


def _missing_package(error: ModuleNotFoundError) -> DataError:
    module = error.name.partition(".")[0]
    package = TFDS_PACKAGES.get(module, module)
    return DataError(
        f"--data tfds: the Python package {package} is not installed (no module named {module!r}); "
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
