"""Reading and writing the run directory's files: JSON documents and CSV tables, replaced atomically.

Standard library only. Writers replace files at once: a reader sees the old version or the
new one, never half of one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict | None:
    """A JSON object from a file, or None when the file is absent; ValueError naming the file
    when it is not one (not UTF-8, not JSON, or JSON of another kind)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is not a JSON object")
    return value


def write_json(path: Path, value: Any) -> None:
    """Replace a JSON file at once; NaN and infinities become null, NumPy scalars numbers."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def jsonable(value: Any) -> Any:
    """A value JSON can hold: numbers stay numbers (NaN → None), paths and others become text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a NumPy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)):
        return value
    return str(value)


def read_rows(path: Path) -> list[dict]:
    """A CSV table as dicts of text cells; [] when the file is absent or empty."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, columns: list[str], rows: Iterable[dict]) -> None:
    """Replace a CSV table at once (missing values empty, extra keys dropped)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(_cells(row) for row in rows)
    os.replace(tmp, path)


def append_row(path: Path, columns: list[str], row: dict) -> None:
    """Append one row to a CSV table, writing the header first if the file is new."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns, restval="", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(_cells(row))


def read_header(path: Path) -> list[str]:
    """A CSV table's column names; [] when the file is absent or empty."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def append_json_line(path: Path, value: dict) -> None:
    """Append one JSON object as a line (JSON Lines), in one write, so a reader sees whole lines
    but perhaps the last, cut short where the writer was killed."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(jsonable(value), allow_nan=False) + "\n")


def cell_text(value: Any) -> str:
    """A value as a CSV cell holds it, and `read_rows` gives it back: None and NaN empty, the rest str()."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _cells(row: dict) -> dict:
    """None and NaN as empty cells, so every reader sees missing values the same way."""
    return {k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else v for k, v in row.items()}


def staging_dir(target: Path) -> Path:
    """An empty folder beside `target` to build its replacement in (see replace_dir)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))


def replace_dir(new: Path, target: Path) -> None:
    """Swap `new` in for `target` by renames, so `target` is never half-written."""
    new, target = Path(new), Path(target)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
