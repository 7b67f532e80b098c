"""Reading a run's study.db (SQLite, Optuna's storage) without ever writing it.

Optuna creates its tables in a database that lacks them, so opening a file that is empty (or holds
no study) through Optuna's ordinary storage writes into it. The report and a warm start read other
runs' studies: they open the file read-only (SQLite's `mode=ro`), by a `file:` URI that
`Path.as_uri` escapes, so a folder named with `?`, `#` or `%` is read where it lies. The one
write is SQLite's own recovery: a driver killed inside a write leaves a hot journal that a
read-only connection cannot roll back (`recover`).
Optuna is imported by `read_only_study` only, when it is called.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A SQLite connection to the file at `path` that can neither write it nor create it
    (sqlite3.OperationalError when it is absent), once SQLite has rolled back a write a killed
    process left half-done (`recover`)."""
    recover(path)
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def recover(path: Path) -> None:
    """Let SQLite roll back a write that a process killed inside it left half-done in the file at
    `path`, as its journal beside it (`study.db-journal`) holds: a driver killed by SIGKILL while
    Optuna committed. A read-only connection cannot roll it back and reads the file as unwritable
    ("attempt to write a readonly database"); a connection that may write does so on its first
    read, restoring the last committed state (SQLite's hot journals,
    https://www.sqlite.org/lockingv3.html#hot_journals). A journal a live writer holds is not hot
    and is left alone; where the file cannot be opened for writing, nothing happens."""
    journal = Path(f"{path}-journal")
    if not journal.is_file() or journal.stat().st_size == 0:
        return
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    with contextlib.suppress(sqlite3.Error), closing(sqlite3.connect(uri, uri=True)) as db:
        db.execute("PRAGMA schema_version").fetchone()


def damage(path: Path) -> str:
    """Why the file at `path` is not a whole SQLite database, in a few words; "" when it is one (an
    empty file is: SQLite reads it as a database without tables). Reads every page (SQLite's
    quick_check), so a file cut short shows here; reads the file only."""
    return _problem(path, lambda db: "")


def study_problem(path: Path, name: str) -> str:
    """Why the file at `path` is not a study database holding the Optuna study `name`, in a few
    words (`damage` first); "" when it is one. Reads the file only."""

    def no_study(db: sqlite3.Connection) -> str:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "studies" not in tables:
            return f"holds no Optuna study (no studies table; {len(tables)} tables)"
        if db.execute("SELECT 1 FROM studies WHERE study_name = ?", (name,)).fetchone() is None:
            return f"holds no study {name!r}"
        return ""

    return _problem(path, no_study)


def told_numbers(path: Path, name: str, added: str) -> list[int]:
    """The numbers of study `name`'s trials told a value (Optuna's COMPLETE), less those holding the
    user attribute `added` (trials a warm start added, never trained in this run), in order; []
    when the file is absent or holds no such study. Reads the file only."""
    query = (
        "SELECT t.number FROM trials t JOIN studies s ON t.study_id = s.study_id "
        "WHERE s.study_name = ? AND t.state = 'COMPLETE' AND NOT EXISTS "
        "(SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = ?) ORDER BY t.number"
    )
    try:
        with closing(read_only_connection(path)) as db:
            return [row[0] for row in db.execute(query, (name, added))]
    except sqlite3.DatabaseError:  # absent, empty (no tables) or not a database: `damage` says which
        return []


def _problem(path: Path, more: Callable[[sqlite3.Connection], str]) -> str:
    """SQLite's quick_check of the file at `path`, then `more` on the same read-only connection."""
    try:
        with closing(read_only_connection(path)) as db:
            checked = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            return more(db) if checked == "ok" else f"is damaged (SQLite's quick_check: {checked})"
    except sqlite3.DatabaseError as error:  # not a database, or a damaged one
        return f"is not a SQLite database ({error})"


def read_only_study(path: Path, name: str) -> Any:
    """The Optuna study `name` stored in the file at `path` (an `optuna.Study` on a read-only
    storage: adding or telling a trial fails). Raises KeyError when the study is absent, and
    SQLAlchemy's errors when the file is not a study database (`study_problem` says which)."""
    import optuna

    storage = optuna.storages.RDBStorage(
        "sqlite://", engine_kwargs={"creator": lambda: read_only_connection(path)}, skip_table_creation=True
    )
    return optuna.load_study(study_name=name, storage=storage)
