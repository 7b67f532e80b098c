"""A run's trials and outcome in MLflow (--mlflow URI; the `mlflow` extra).

One MLflow experiment per run directory (named by its absolute path). Each trial is an MLflow
run named by its trial id, through Ray Tune's `MLflowLoggerCallback` (search.tracking.TrialsToMLflow): its configuration as
parameters, every epoch's metrics (step = the epoch), and at its end its state and reason as
tags (completed, stopped_early, diverged, errored) beside MLflow's FINISHED or FAILED. When the
run ends, one more MLflow run, "outcome", holds summary.json's numbers as metrics and the
summary, the report and the exported model as artifacts.

`check_tracking` reads the URI as MLflow does (a tracking server, a folder for its file store, a
SQLite file, a database server, Databricks) and checks it before Ray starts, writing nothing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from runfiles.cli import UsageError
from runfiles.documents import RunFacts, Summary
from runfiles.layout import OBJECTIVE, RunDir
from search import internals
from search.cluster import HOST_PORT

OUTCOME_RUN = "outcome"
CHECK_TIMEOUT_S = 5
"""Seconds a tracking server or database server has to answer before the run starts (--mlflow's check)."""
FILE_STORE_OPT_IN = "MLFLOW_ALLOW_FILE_STORE"
"""The environment variable without which MLflow 3 refuses to open its file store (kept in maintenance mode)."""
DATABASE_SERVERS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
"""MLflow's database stores reached over the network, with their default ports."""
DATABRICKS = ("databricks", "databricks-uc", "uc")
"""MLflow's names for a Databricks workspace (and its Unity Catalog) as a tracking URI."""
DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient"}
"""pip's name for a database driver module whose package is named otherwise."""
EXPECTED = (
    "expected http(s)://HOST:PORT (a tracking server), a folder (PATH or file:///PATH), "
    "sqlite:///PATH.db or a database server such as postgresql://USER@HOST/DB"
)
SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file (sqlite.org/fileformat.html)."""


def check_tracking(uri: str | None) -> str | None:
    """Before Ray starts: mlflow is installed, and the tracking URI is one MLflow opens and this
    run can log to, checked without writing anything. Returns the URI as the run uses it: a local
    store (a folder, a SQLite file) with its absolute path; None without --mlflow.

    Raises UsageError, one line naming --mlflow, the value and what would work, for: a value that
    is no tracking URI, a server or database server that does not answer within CHECK_TIMEOUT_S,
    a folder or SQLite file that cannot be made or written, a file that is no MLflow database,
    a database driver not installed, and a Databricks workspace (its experiments are workspace
    paths, not a run directory's)."""
    if uri is None:
        return None
    try:
        import mlflow  # noqa: F401 - the optional extra
    except ImportError:
        raise UsageError(f"--mlflow {uri}: mlflow is not installed; pip install -e '.[mlflow]'") from None
    kind = store_kind(uri)
    if kind in ("http", "https"):
        check_server(uri)
        return uri
    if kind == "file":
        return file_store(uri)
    if kind == "sqlite":
        return sqlite_store(uri)
    if kind in DATABASE_SERVERS:
        check_database_server(uri, kind)
        return uri
    if kind in DATABRICKS:
        raise UsageError(
            f"--mlflow {uri}: a Databricks workspace keeps experiments at workspace paths (/Users/..., /Shared/...), "
            "not at a run directory's path; log to a tracking server (http://HOST:PORT) or a local store (sqlite:///mlflow.db)"
        )
    return uri  # a scheme an installed MLflow plugin registered: it checks its own URIs


def store_kind(uri: str) -> str:
    """Which of MLflow's tracking stores `uri` opens, by MLflow's own reading of it: 'http',
    'https', 'file' (a folder, also a plain path), 'sqlite', a database server ('postgresql',
    'mysql', 'mssql'), Databricks ('databricks', 'databricks-uc', 'uc') or a plugin's scheme.
    Raises UsageError for a value MLflow has no store for, and for HOST:PORT (MLflow reads either
    a folder or a scheme of that name; a server is http://HOST:PORT)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.uri import get_uri_scheme

    if not uri.strip():
        raise UsageError(f"--mlflow {uri!r}: not a tracking URI; {EXPECTED}")
    if "//" not in uri and HOST_PORT.match(uri):
        raise UsageError(
            f"--mlflow {uri}: not a tracking URI (a host and port without a scheme); a tracking server is http://{uri}"
        )
    if uri in DATABRICKS:
        return uri
    try:
        internals.check_store_scheme(uri)  # MLflow's own table of schemes, plugins' included
        scheme = get_uri_scheme(uri)
    except MlflowException:
        scheme = urllib.parse.urlparse(uri).scheme
        raise UsageError(f"--mlflow {uri}: not a tracking URI MLflow knows (scheme {scheme!r}); {EXPECTED}") from None
    return scheme or "file"


def check_server(uri: str) -> None:
    """An http(s) tracking server answers its /health within CHECK_TIMEOUT_S; UsageError otherwise."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=CHECK_TIMEOUT_S) as answer:
            answer.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(
            f"--mlflow {uri}: no MLflow tracking server answers there ({reason}); start one, e.g. "
            "mlflow server --host 127.0.0.1 --port 5000, or drop --mlflow"
        ) from None


def file_store(uri: str) -> str:
    """MLflow's file store, `uri` a folder (file:///PATH or a plain PATH, relative to the working
    directory): returns file:///ABSOLUTE_PATH once the folder is one this process can make (MLflow
    makes missing parents) or write in. UsageError otherwise, and for file://HOST/PATH (two slashes)."""
    from mlflow.utils.file_utils import local_file_uri_to_path

    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
        raise UsageError(
            f"--mlflow {uri}: {parsed.netloc!r} reads as a host, not a folder; "
            f"a local folder is file:///{parsed.netloc}{parsed.path} (three slashes)"
        )
    folder = Path(os.path.abspath(local_file_uri_to_path(uri)))
    writable(uri, folder, is_folder=True, advice="MLflow's file store is a folder: give a new or existing one")
    return folder.as_uri()


def sqlite_store(uri: str) -> str:
    """MLflow's store in a SQLite file (sqlite:///RELATIVE.db or sqlite:////ABSOLUTE.db): returns the
    URI with the file's absolute path, once the file is one this process can make (MLflow makes
    missing parents) or an MLflow database this mlflow opens (`check_mlflow_database`). UsageError
    otherwise, and for an in-memory database (gone when the run ends)."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        raise UsageError(
            f"--mlflow {uri}: an in-memory database is gone when the run ends; give a file, e.g. sqlite:///mlflow.db"
        )
    path = Path(os.path.abspath(url.database))
    writable(uri, path, is_folder=False, advice=f"give the database file, e.g. sqlite:///{path / 'mlflow.db'}")
    if path.exists():
        check_mlflow_database(uri, path)
    return url.set(database=str(path)).render_as_string(hide_password=False)


def writable(uri: str, path: Path, is_folder: bool, advice: str) -> None:
    """`path` exists as a folder (`is_folder`) or a file and may be written, or is absent and its
    nearest existing parent is a folder this process may write in. UsageError otherwise (`advice`
    says what would work when a file stands where a folder should, or the other way round)."""
    if path.exists():
        if path.is_dir() != is_folder:
            raise UsageError(f"--mlflow {uri}: {path} is {'a file' if is_folder else 'a folder'}; {advice}")
        if not os.access(path, os.W_OK | (os.X_OK if is_folder else 0)):
            raise UsageError(f"--mlflow {uri}: {path} is not writable here; give a path this user may write")
        return
    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise UsageError(f"--mlflow {uri}: cannot make {path}: {parent} is a file; give a path under a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--mlflow {uri}: cannot make {path}: {parent} is not writable here; give a path this user may write")


def check_mlflow_database(uri: str, path: Path) -> None:
    """An existing SQLite file is one this mlflow opens as it is: empty, a SQLite database without
    MLflow's tables yet (MLflow makes them), or one at the schema revision this mlflow expects
    (alembic_version; MLflow refuses an older one until `mlflow db upgrade`). Read only; UsageError otherwise."""
    from mlflow.version import VERSION

    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise UsageError(f"--mlflow {uri}: {path} is not a SQLite database; give a new file or an MLflow database")
    if not header:
        return
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as database:
        try:
            found = database.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return
            raise UsageError(f"--mlflow {uri}: {path} cannot be read ({error})") from None
    latest = internals.latest_schema_revision()
    if found and found[0] != latest:
        raise UsageError(
            f"--mlflow {uri}: the database's schema is at revision {found[0]}, mlflow {VERSION} expects {latest}; "
            f"if an older MLflow made it, back it up and run: mlflow db upgrade {uri} (or give a new file)"
        )


def check_database_server(uri: str, kind: str) -> None:
    """A database server's URI (`kind` one of DATABASE_SERVERS): SQLAlchemy parses it, its host
    answers within CHECK_TIMEOUT_S (at the kind's default port unless the URI gives one), and the
    driver it names is installed. Credentials are left to MLflow, which makes its tables at its
    first connection. UsageError otherwise (the password never shown)."""
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(uri)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise UsageError(
            f"--mlflow {uri}: not a database URL ({error}); expected {kind}://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    shown = url.render_as_string(hide_password=True)
    if url.host:
        port = url.port or DATABASE_SERVERS[kind]
        try:
            socket.create_connection((url.host, port), timeout=CHECK_TIMEOUT_S).close()
        except OSError as error:
            raise UsageError(
                f"--mlflow {shown}: no database server answers at {url.host}:{port} ({error.strerror or error}); "
                "start it, or log to a local store such as sqlite:///mlflow.db"
            ) from None
    try:
        sqlalchemy.create_engine(url).dispose()
    except ImportError as error:
        package = DRIVER_PACKAGES.get(error.name or "", error.name)
        raise UsageError(
            f"--mlflow {shown}: its database driver ({error.name}) is not installed; "
            f"pip install '{package}', or name an installed one ({kind}+DRIVER://...)"
        ) from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise UsageError(
            f"--mlflow {shown}: SQLAlchemy has no driver {url.drivername!r}; name an installed one, or none"
        ) from None


def allow_file_store(uri: str) -> None:
    """Let MLflow open its file store in this process when `uri` names one: MLflow 3 keeps it in
    maintenance mode and opens it only with FILE_STORE_OPT_IN set; naming a folder to --mlflow is
    that choice. Call it where the store is opened (Tune's callbacks may run on a cluster's head)."""
    if store_kind(uri) == "file":
        os.environ[FILE_STORE_OPT_IN] = "true"


def viewer(uri: str) -> str:
    """The command that shows a local store's runs in MLflow's UI; "" for a server (it has its own)."""
    kind = store_kind(uri)
    if kind == "file":
        return f"{FILE_STORE_OPT_IN}=true mlflow ui --backend-store-uri {shlex.quote(uri)}"
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)}" if kind == "sqlite" else ""


def experiment_name(run_dir: RunDir) -> str:
    """The MLflow experiment of a run directory: its absolute path."""
    return str(Path(run_dir.root).resolve())


def outcome_metrics(run_dir: RunDir) -> dict[str, float]:
    """summary.json's numbers for the outcome run (`Summary.numbers`); {} without a summary."""
    facts = RunFacts.read(run_dir)
    objective = facts.ranking if facts else OBJECTIVE
    summary = Summary.read(run_dir, objective)
    return summary.numbers(objective) if summary else {}


def log_outcome(uri: str, run_dir: RunDir) -> str:
    """The run's outcome as one MLflow run: summary.json's numbers, the summary, report and
    exported model as artifacts; returns its run id."""
    import mlflow

    allow_file_store(uri)
    client = mlflow.MlflowClient(uri)
    name = experiment_name(run_dir)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=OUTCOME_RUN, tags={"run_dir": name})
    for key, value in outcome_metrics(run_dir).items():
        client.log_metric(run.info.run_id, key, value)
    for path in (run_dir.summary_json, run_dir.run_json):
        if path.is_file():
            client.log_artifact(run.info.run_id, str(path))
    for folder in (run_dir.report, run_dir.best_model):
        if folder.is_dir():
            client.log_artifacts(run.info.run_id, str(folder), artifact_path=folder.name)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
