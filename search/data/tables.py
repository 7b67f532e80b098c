"""The table source: CSV, TSV, JSON Lines or Parquet, with a text column and a label column.

`--data` names one file (a test split is then carved from it: seeded, stratified by label,
`test_fraction`), or a folder holding train.<ext> and test.<ext> in one format, and optionally
validation.<ext> (then the validation split, instead of one carved from train). Only the two
columns are read (pandas' `usecols`, Parquet's `columns`; JSON Lines in chunks, keeping those two),
so a wide or large file costs the two columns' memory. Rows keep the file's order; an empty text is
kept (and counted by the core); a row without a label is refused, or dropped and counted with
`drop_missing`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from search.data.reviews import DataError, ReadOptions, Reviews, counted
from search.data.splitting import stratified_split, too_few

FORMATS = {".csv": "CSV", ".tsv": "TSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
"""The file name endings this source reads, and what each format is called."""
ROLES = {"train": "train", "test": "test", "validation": "val"}
"""A folder's file stems and the split each one gives."""
MISSING_LABELS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "<NA>", "#N/A")
"""How a CSV or TSV spells a missing label (a label of only spaces is missing too)."""
JSON_CHUNK = 100_000
"""JSON Lines rows parsed at a time."""
JSON_HEAD = 1000
"""JSON Lines records whose keys are the columns found (a key absent from a record is a missing value)."""
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


def matches(source: str) -> bool:
    """Whether `source` is a file ending in .csv, .tsv, .jsonl or .parquet, or a folder holding
    train.*, test.* or validation.* with one of those endings."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() in FORMATS
    return path.is_dir() and bool(_role_files(path))


def check(source: str, options: ReadOptions) -> None:
    """Fail fast, before Ray starts: the folder's files in one format, train and test present, each
    file with the text and label columns (only headers and schemas are read).

    Raises:
        DataError: one line naming the file, what is wrong and what would work.
    """
    for path in _files(source).values():
        _check_columns(source, path, options)


def fingerprint(source: str, options: ReadOptions) -> str:
    """A hex digest of the file's bytes, or of the folder's table files (their roles and bytes)."""
    digest = hashlib.sha256()
    for role, path in sorted(_files(source).items()):
        digest.update(f"{role}:{path.suffix.lower()}\n".encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read(source: str, options: ReadOptions) -> tuple[dict[str, Reviews], dict]:
    """{"train"|"test"[|"val"]: Reviews} (ids None, labels as the file spells them: int64 when
    every label is an integer, else strings) and the facts of reading: counts per split and class,
    "test_split" (how the test split was made) and, with `drop_missing`, "dropped_missing" (rows
    without a label dropped, all files together).

    Raises DataError (one line) for a file that cannot be parsed, is empty or holds only a header,
    lacks a column (the columns found listed), holds a non-text value in the text column, a label
    that is no class name or integer, rows without a label (unless `drop_missing`), or, for one
    file, a class too rare to be carved into both train and test.
    """
    files, dropped, reviews = _files(source), 0, {}
    for role, path in files.items():
        reviews[role], lost = _reviews(source, path, options)
        dropped += lost
    if "all" in reviews:
        reviews = _carve(source, files["all"], reviews.pop("all"), options)
        made = f"carved: {options.test_fraction * 100:g}% of {files['all'].name}, stratified, seed {options.seed}"
    else:
        made = f"given: {files['test'].name}"
    reviews, facts = counted(reviews, replaced=0, hidden=0)
    return reviews, facts | {"test_split": made} | ({"dropped_missing": dropped} if options.drop_missing else {})


# ---------------------------------------------------------------- finding the files


def _role_files(folder: Path) -> list[Path]:
    """The table files of a folder that name a split (train.csv, test.parquet, ...); hidden ones skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.stem in ROLES and p.suffix.lower() in FORMATS and p.is_file() and not p.name.startswith(".")
    )


def _files(source: str) -> dict[str, Path]:
    """{"all": the file} for one file; {"train", "test"[, "val"]: its file} for a folder.

    Raises DataError for a folder with two formats, with class folders (train/, test/) beside its
    tables, or without train.<ext> or test.<ext>.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return {"all": path}
    found = _role_files(path)
    endings = sorted({p.suffix.lower() for p in found})
    if len(endings) > 1:
        names = ", ".join(p.name for p in found)
        raise DataError(
            f"--data {source}: holds tables in {len(endings)} formats ({names}); keep one format (train.*, test.*, validation.*)"
        )
    trees = [name for name in ("train", "test") if (path / name).is_dir()]
    if trees:
        raise DataError(
            f"--data {source}: holds tables ({', '.join(p.name for p in found)}) and class folders ({', '.join(trees)}/); "
            "keep one dataset per folder"
        )
    ext = endings[0] if endings else ".csv"
    files = {ROLES[p.stem]: p for p in found}
    for role in ("train", "test"):
        if role not in files:
            raise DataError(
                f"--data {source}: holds no {role}{ext} (found: {', '.join(p.name for p in found)}); add {role}{ext}, "
                f"or pass one file as --data to carve a test split from it"
            )
    return files


# ---------------------------------------------------------------- reading one file


def _at(source: str, path: Path) -> str:
    """How an error names a file: the --data value, and the file's name when it lies in a folder."""
    return f"--data {source}" if Path(source).expanduser().is_file() else f"--data {source} ({path.name})"


def _columns(source: str, path: Path) -> list[str]:
    """The file's column names, from its header or schema (JSON Lines: the keys of its first chunk).

    Raises DataError for an empty file, or one that cannot be parsed.
    """
    if path.stat().st_size == 0:
        raise DataError(f"{_at(source, path)}: the file is empty; give a table with a row per text")
    ext = path.suffix.lower()
    with _parsing(source, path):
        if ext in (".csv", ".tsv"):
            return [str(c) for c in pd.read_csv(path, sep="\t" if ext == ".tsv" else ",", nrows=0).columns]
        if ext == ".parquet":
            import pyarrow.parquet as pq  # here, not at the top: only Parquet needs it

            return list(pq.read_schema(path).names)
        return _json_keys(source, path)


def _json_keys(source: str, path: Path) -> list[str]:
    """The keys of a JSON Lines file's first JSON_HEAD records, in order of appearance.

    Raises DataError for a file without records, or a line that is no JSON object.
    """
    keys: dict[str, None] = {}
    with path.open(encoding="utf-8") as lines:
        records = (line for line in lines if line.strip())
        for number, line in enumerate(records, 1):
            record = json.loads(line)
            if not isinstance(record, dict):
                raise DataError(
                    f"{_at(source, path)}: record {number} is no JSON object ({line.strip()[:60]!r}); write one object per line"
                )
            keys |= dict.fromkeys(record)
            if number == JSON_HEAD:
                break
    if not keys:
        raise DataError(f"{_at(source, path)}: the file is empty; give a table with a row per text")
    return list(keys)


def _check_columns(source: str, path: Path, options: ReadOptions) -> None:
    columns = _columns(source, path)
    for what, name in (("text", options.text_column), ("label", options.label_column)):
        if name not in columns:
            shown = ", ".join(columns[:20]) + (f", ... ({len(columns)} in all)" if len(columns) > 20 else "")
            raise DataError(
                f"{_at(source, path)}: no {what} column {name!r} (columns found: {shown or 'none'}); "
                f"name the columns with --text-column and --label-column"
            )


@contextmanager
def _parsing(source: str, path: Path) -> Iterator[None]:
    """Turns a parser's failure on `path` into one DataError line."""
    try:
        yield
    except DataError:
        raise
    except UnicodeDecodeError as error:
        raise DataError(
            f"{_at(source, path)}: is not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{_at(source, path)}: the file is empty; give a table with a row per text") from None
    except (ValueError, OSError) as error:  # pandas', pyarrow's and json's parse errors are ValueErrors
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        fmt = FORMATS[path.suffix.lower()]
        raise DataError(f"{_at(source, path)}: cannot be read as {fmt} ({first}); check the file's format") from None


def _frame(source: str, path: Path, options: ReadOptions) -> pd.DataFrame:
    """The text and label columns of a file (rows in the file's order, index 0..n-1); CSV and TSV
    cells as strings (a missing label NaN, an empty text "")."""
    _check_columns(source, path, options)
    text, label, ext = options.text_column, options.label_column, path.suffix.lower()
    with _parsing(source, path):
        if ext in (".csv", ".tsv"):
            return pd.read_csv(
                path,
                sep="\t" if ext == ".tsv" else ",",
                usecols=[text, label],
                dtype=str,
                keep_default_na=False,
                na_values={label: list(MISSING_LABELS)},
            )
        if ext == ".parquet":
            return pd.read_parquet(path, columns=[text, label])
        chunks = pd.read_json(path, lines=True, chunksize=JSON_CHUNK, dtype=False)
        return pd.concat([chunk.reindex(columns=[text, label]) for chunk in chunks], ignore_index=True)


def _reviews(source: str, path: Path, options: ReadOptions) -> tuple[Reviews, int]:
    """The file's reviews, and the rows dropped for lacking a label (`drop_missing`).

    Raises DataError for a file without rows, a non-text value in the text column, a label that is
    no class name or integer, or rows without a label (unless `drop_missing`).
    """
    frame = _frame(source, path, options)
    if frame.empty:
        raise DataError(f"{_at(source, path)}: holds a header but no rows; give a table with rows")
    labels = frame[options.label_column]
    missing = labels.isna().to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in labels], bool)
    if missing.any() and not options.drop_missing:
        raise DataError(
            f"{_at(source, path)}: {missing.sum():,} of {len(frame):,} rows have no label in column "
            f"{options.label_column!r} (the first: row {np.argmax(missing) + 1}); fill them in, or pass --drop-missing "
            "to drop them"
        )
    frame = frame[~missing]
    if frame.empty:
        raise DataError(f"{_at(source, path)}: no row has a label in column {options.label_column!r}; check --label-column")
    texts = _texts(source, path, frame[options.text_column], options.text_column)
    return Reviews(texts, _labels(source, path, frame[options.label_column], options.label_column), None), int(missing.sum())


def _texts(source: str, path: Path, column: pd.Series, name: str) -> list[str]:
    """Each row's text ("" where the cell is empty or null).

    Raises DataError naming the first row (1 = the first data row) whose value is not text, or,
    for CSV and TSV, where every value is a number (a column of numbers is no text column).
    """
    if isinstance(column.dtype, pd.StringDtype):
        texts = column.fillna("").tolist()
        if path.suffix.lower() in (".csv", ".tsv") and _all_numbers(column):
            raise _not_text(source, path, name, column.index[0], texts[0], "every value is a number")
        return texts
    values = column.to_numpy(dtype=object)
    bad = np.flatnonzero(~column.isna().to_numpy() & ~np.array([isinstance(v, str) for v in values], bool))
    if len(bad):
        raise _not_text(source, path, name, column.index[bad[0]], values[bad[0]], f"of type {type(values[bad[0]]).__name__}")
    return [v if isinstance(v, str) else "" for v in values]


def _all_numbers(column: pd.Series) -> bool:
    """Whether every non-empty value of a column of strings is a number (only the first is read
    when it is not)."""
    filled = column[column.fillna("").str.strip() != ""]
    if filled.empty or pd.isna(pd.to_numeric(filled.iloc[:1], errors="coerce").iloc[0]):
        return False
    return bool(pd.to_numeric(filled, errors="coerce").notna().all())


def _not_text(source: str, path: Path, name: str, row: int, value, why: str) -> DataError:
    return DataError(
        f"{_at(source, path)}: row {row + 1} holds {_shown(value)} in the text column {name!r} ({why}), not text; "
        f"--text-column must name the column of texts"
    )


def _shown(value) -> str:
    """A cell's value as an error message shows it: 0.5, 'abc', [1, 2] (NumPy's scalars as Python's)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _labels(source: str, path: Path, column: pd.Series, name: str) -> np.ndarray:
    """The labels as the file spells them: int64 when every one is an integer (or an integer
    string, as CSV spells numbers; or a whole float, as a column with gaps holds them), else strings
    (object array; true/false as "True"/"False").

    Raises DataError naming the first row whose label is neither a string nor an integer.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(column.dtype.categories.dtype)
    if pd.api.types.is_integer_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(np.int64)
    if isinstance(column.dtype, pd.StringDtype):  # CSV and TSV: every label a string
        if column.str.fullmatch(_INTEGER.pattern).all():
            return column.astype(np.int64).to_numpy()
        return column.to_numpy(dtype=object)
    spelled = [_class_of(v) for v in column.to_numpy(dtype=object)]
    if None in spelled:
        at = spelled.index(None)
        raise DataError(
            f"{_at(source, path)}: row {column.index[at] + 1} holds {_shown(column.iloc[at])} in the label column {name!r}, "
            f"not a class; --label-column must name a column of class names or integers"
        )
    if all(isinstance(v, int) for v in spelled):
        return np.array(spelled, np.int64)
    return np.array([str(v) for v in spelled], dtype=object)


def _class_of(value) -> str | int | None:
    """A label as a class: an integer (from an int, a whole float or an integer string), a string,
    "True"/"False" for a truth value; None for anything else (a fraction, a list, ...)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, str):
        return int(value) if _INTEGER.fullmatch(value) else value
    return None


def _carve(source: str, path: Path, reviews: Reviews, options: ReadOptions) -> dict[str, Reviews]:
    """{"train", "test"}: a seeded test split of `test_fraction`, stratified by label, each side in
    the file's order.

    Raises DataError for a class with too few rows to be on both sides.
    """
    labels = reviews.labels
    rare = too_few(labels, options.test_fraction)
    if rare is not None:
        name, count, needed = rare
        raise DataError(
            f"--data {source}: class {str(name)!r} has {count} row{'s' * (count != 1)}, too few for a stratified "
            f"{options.test_fraction * 100:g}% test split (it needs {needed}); add rows of it, remove them, or give a folder "
            f"with train{path.suffix} and test{path.suffix}"
        )
    train, test = stratified_split(labels, options.test_fraction, options.seed)
    return {name: Reviews([reviews.texts[i] for i in idx], labels[idx], None) for name, idx in (("train", train), ("test", test))}
