"""The table source: CSV, TSV, JSON Lines or Parquet, with a text column and a label column.

`--data` names one file (the core then carves a test split from it: seeded, stratified by label,
`test_fraction`), or a folder holding train.<ext> and test.<ext> in one format, and optionally
validation.<ext> (then the validation split, instead of one carved from train; val, valid or dev
too), names and endings in any case (`reviews.SPLIT_NAMES`). Only the two
columns are read (pandas' `usecols`, Parquet's `columns`; JSON Lines in chunks, keeping those two),
so a wide or large file costs the two columns' memory. Rows keep the file's order.

Each format is read as it is defined: CSV with RFC 4180's quotes (a quoted field may hold commas,
quotes and line breaks); TSV as IANA's text/tab-separated-values, without quoting (a line is a
row, a quote is a character), unless `quoting` says otherwise; `delimiter` replaces either's
separator. A CSV or TSV line with more fields than the header is refused (naming its line), as is a
row that repeats the header (files joined with `cat`), unless `drop_header_rows` drops it. An empty
text is kept (and counted by the core); a row without a label, and a JSON Lines or Parquet row
whose text is absent or null, is refused, or dropped and counted with `drop_missing`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from runfiles.documents import DataFacts
from runfiles.layout import visible
from search.data.labels import integer_array, visible_form
from search.data.reviews import SPLIT_NAMES, ColumnOptions, DataError, Reviews

FORMATS = {".csv": "CSV", ".tsv": "TSV", ".jsonl": "JSON Lines", ".parquet": "Parquet"}
"""The file name endings this source reads, and what each format is called."""
DELIMITED = {".csv": ",", ".tsv": "\t"}
"""The formats of delimited lines (CSV, TSV), each with its own separator."""
MISSING_LABELS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "<NA>", "#N/A")
"""How a CSV or TSV spells a missing label (a label of only spaces is missing too)."""
BOM = "\ufeff"
"""The byte-order mark that begins a file saved as "UTF-8 with BOM" (and each such file joined with `cat`)."""
SEPARATORS = ",;|\t"
"""The separators a one-column header is searched for (`_check_columns`)."""
CHUNK_ROWS = 20_000
"""Rows parsed at a time (CSV, TSV, JSON Lines)."""
JSON_HEAD = 1000
"""JSON Lines records whose keys are the columns found (a key absent from a record is a missing value)."""
READING = 2
"""How tables are read and split, in their fingerprint so that data prepared another way is prepared
again: 2 since TSV has no quoting, rows that repeat the header and absent texts are refused,
labels are cleaned (`labels.as_classes`) and a carved split holds out the share asked."""
LINES_SHOWN = 5
"""Line numbers an error lists before it says how many there are in all."""
GIVEN = "given:"
"""How the facts' "test_split" begins for a folder's test file (`given_text`)."""
SEP_LINE = re.compile(r'"?sep=(.)"?,*')
"""Excel's first line naming a CSV file's separator ("sep=;"; the quotes and trailing commas that
saving it again may add)."""
SEP_LINE_MAX = 64
"""The characters of a first line read to look for SEP_LINE."""
DELIMITERS = {"\\t": "\t", "tab": "\t"}
"""How --delimiter may spell a tab on a command line, besides the character itself."""


@dataclass(frozen=True)
class TableOptions(ColumnOptions):
    """What this source's reader is told: the columns (`ColumnOptions`), and how a file's rows are parsed."""

    drop_header_rows: bool = False
    """Drop the rows of a table that repeat its header (files joined with `cat`), counted in run.json,
    instead of refusing it."""
    quoting: Literal["auto", "none", "csv"] = "auto"
    """Quotes in a CSV or TSV file: csv (RFC 4180: a quoted field may hold separators and line
    breaks), none (a quote is a character, a line is a row), auto (CSV quoted, TSV not, as IANA's TSV
    has no quoting)."""
    delimiter: str | None = field(default=None, metadata={"metavar": "CHAR"})
    """The field separator of a CSV or TSV file, one character ('\\t' for a tab); none: the
    format's own (',' for .csv, a tab for .tsv)."""

    def __post_init__(self) -> None:
        if self.delimiter is not None:
            object.__setattr__(self, "delimiter", DELIMITERS.get(self.delimiter, self.delimiter))
            if len(self.delimiter) != 1 or self.delimiter in '"\r\n':
                raise DataError(
                    f"--delimiter {self.delimiter!r} is invalid: expected one character such as ';' or '|' ('\\t' for a tab)"
                )
        super().__post_init__()


def matches(source: str) -> bool:
    """Whether `source` is a file ending in .csv, .tsv, .jsonl or .parquet, or a folder holding
    train.*, test.* or validation.* with one of those endings."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.suffix.lower() in FORMATS
    return path.is_dir() and bool(_role_files(path))


def check(source: str, options: TableOptions) -> None:
    """Fail fast, before Ray starts: the folder's files in one format, train and test present, each
    file with the text and label columns (only headers and schemas are read).

    Raises:
        DataError: one line naming the file, what is wrong and what would work.
    """
    for path in _files(source).values():
        _check_columns(source, path, options)


def fingerprint(source: str, options: TableOptions) -> str:
    """A hex digest of READING and the file's bytes, or of the folder's table files (their roles and bytes)."""
    digest = hashlib.sha256(f"reading {READING}\n".encode())
    for role, path in sorted(_files(source).items()):
        digest.update(f"{role}:{path.suffix.lower()}\n".encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read(source: str, options: TableOptions) -> tuple[dict[str, Reviews], DataFacts]:
    """{"train"|"test"[|"val"]: Reviews} (ids None, labels as the file spells them: int64 when
    every label is an integer, else strings), only "train" for one file (the core carves the test
    split), and the facts of reading: "test_split" (the file given) for a folder and, with
    `drop_missing`, "dropped_missing" and "dropped_missing_texts" (rows without a label, and rows
    with a label but without a text, dropped, all files together), with `drop_header_rows`,
    "header_rows_dropped".

    Raises DataError (one line) for a file that cannot be parsed, is empty or holds only a header,
    lacks a column (the columns found listed; a one-column header that holds another separator
    named), has a line with more fields than its header, repeats its header (unless
    `drop_header_rows`), holds a non-text value in the text column, a label that is no class name or
    integer, or rows without a label or a text (unless `drop_missing`).
    """
    files, dropped, reviews = _files(source), Counter(), {}
    for role, path in files.items():
        reviews[role], lost = _reviews(source, path, options)
        dropped.update(lost)
    facts = DataFacts()
    if "all" in reviews:
        reviews["train"] = reviews.pop("all")
    else:
        facts.test_split = given_text(source)
    if options.drop_missing:
        facts.dropped_missing, facts.dropped_missing_texts = dropped["label"], dropped["text"]
    if options.drop_header_rows:
        facts.header_rows_dropped = dropped["header"]
    return reviews, facts


def given_text(source: str) -> str:
    """How a folder's test split was given, as the facts say it: "given: test.csv" (its file's name)."""
    return f"{GIVEN} {_files(source)['test'].name}"


def read_column(source: str, options: TableOptions) -> tuple[list[str], int]:
    """The texts of one table file's text column (`options.text_column`), in the file's order, and
    how many rows have none (absent or null: left out), for texts without labels (learning word
    vectors, `search.vectors --unlabeled`). Parsed as `read` parses a table; no label column needed.

    Raises DataError (one line) for a file that cannot be parsed or is empty, lacks the text column
    (the columns found listed), has a line with more fields than its header, or holds a value that
    is not text in the column.
    """
    path = Path(source).expanduser()
    columns = _check_columns(source, path, options, roles=("text",))
    column = _parsed(source, path, options, [options.text_column], len(columns))[options.text_column]
    missing = column.isna().to_numpy()
    return _texts(source, path, column[~missing], options.text_column), int(missing.sum())


# ---------------------------------------------------------------- finding the files


def _role_files(folder: Path) -> list[Path]:
    """The table files of a folder that name a split (train.csv, Test.CSV, dev.parquet, ...); hidden ones skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.stem.lower() in SPLIT_NAMES and p.suffix.lower() in FORMATS and p.is_file() and not p.name.startswith(".")
    )


def _files(source: str) -> dict[str, Path]:
    """{"all": the file} for one file; {"train", "test"[, "val"]: its file} for a folder.

    Raises DataError for a folder with two formats, with class folders (train/, test/) beside its
    tables, with two files of one split (val.csv and dev.csv), or without train.<ext> or test.<ext>.
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
    trees = sorted(p.name for p in path.iterdir() if p.name.lower() in ("train", "test") and p.is_dir())
    if trees:
        raise DataError(
            f"--data {source}: holds tables ({', '.join(p.name for p in found)}) and class folders ({'/, '.join(trees)}/); "
            "keep one dataset per folder"
        )
    ext = endings[0] if endings else ".csv"
    files = {}
    for p in found:
        role = SPLIT_NAMES[p.stem.lower()]
        if role in files:
            raise DataError(f"--data {source}: holds two files of one split ({files[role].name}, {p.name}); keep one of them")
        files[role] = p
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


def _delimited(path: Path, options: TableOptions) -> dict:
    """pandas' (and the csv module's) separator, quoting and lines to skip for a CSV or TSV file:
    `delimiter`, else the one a first line "sep=;" names (Excel's; that line is skipped, as Excel
    skips it), else the format's own; RFC 4180 quotes for CSV, none for TSV, unless `quoting` says
    "csv" or "none"."""
    ext = path.suffix.lower()
    quoted = options.quoting == "csv" or (options.quoting == "auto" and ext == ".csv")
    named = _sep_line(path)
    sep = options.delimiter or named or DELIMITED[ext]
    return {"sep": sep, "quoting": csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE, "skiprows": int(named is not None)}


def _sep_line(path: Path) -> str | None:
    """The separator that Excel's first line "sep=X" names (SEP_LINE), or None for a file without one."""
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        match = SEP_LINE.fullmatch(f.readline(SEP_LINE_MAX).rstrip("\r\n"))
    return match.group(1) if match else None


def _columns(source: str, path: Path, options: TableOptions) -> list[str]:
    """The file's column names, from its header or schema (JSON Lines: the keys of its first chunk).

    Raises DataError for an empty file, or one that cannot be parsed.
    """
    if path.stat().st_size == 0:
        raise DataError(f"{_at(source, path)}: the file is empty; give a table with a row per text")
    ext = path.suffix.lower()
    with _parsing(source, path):
        if ext in DELIMITED:
            return [str(c) for c in pd.read_csv(path, nrows=0, **_delimited(path, options)).columns]
        if ext == ".parquet":
            import pyarrow.parquet as pq  # here, not at the top: only Parquet needs it

            return list(pq.read_schema(path).names)
        return _json_keys(source, path)


def _json_keys(source: str, path: Path) -> list[str]:
    """The keys of a JSON Lines file's first JSON_HEAD records, in order of appearance.

    Raises DataError for a file without records, or a line that is no JSON object (`_json_records`).
    """
    keys: dict[str, None] = {}
    for count, (_, record) in enumerate(_json_records(source, path), 1):
        keys |= dict.fromkeys(record)
        if count == JSON_HEAD:
            break
    if not keys:
        raise DataError(f"{_at(source, path)}: the file is empty; give a table with a row per text")
    return list(keys)


def _json_records(source: str, path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) of each JSON Lines line that is not blank, a UTF-8 byte-order mark
    that begins the file dropped.

    Raises DataError naming the first line that is no JSON object, or that holds an integer
    outside the 64 bits pandas' reader reads (`_int64`).
    """
    with path.open(encoding="utf-8-sig") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line, parse_int=_int64)
            except json.JSONDecodeError as error:
                advice = "write one JSON object per line"
                if line[0] == BOM:
                    advice = "it begins with a byte-order mark (files joined with `cat`?): remove it"
                raise DataError(
                    f"{_at(source, path)}: line {number} is not JSON ({error.msg}, column {error.colno}); {advice}"
                ) from None
            except OverflowError as error:
                raise DataError(
                    f"{_at(source, path)}: line {number} holds the integer {error}, larger than 64 bits can hold; "
                    f'write it as a string ("{error}")'
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"{_at(source, path)}: line {number} is no JSON object ({line.strip()[:60]!r}); write one object per line"
                )
            yield number, record


def _int64(digits: str) -> int:
    """A JSON integer, as pandas' reader takes it: from -2**63 to 2**64 - 1.

    Raises:
        OverflowError: its digits, for one outside.
    """
    value = int(digits)
    if not -(2**63) <= value < 2**64:
        raise OverflowError(digits)
    return value


def _check_columns(source: str, path: Path, options: TableOptions, roles: tuple[str, ...] = ("text", "label")) -> list[str]:
    """The file's columns, once the columns of `roles` ("text": `options.text_column`, "label":
    `options.label_column`) are among them.

    Raises DataError naming the columns found; for a CSV or TSV whose header is one column holding
    another separator, what the file looks like and what would work; for --delimiter or --quoting
    given to a format without separators (`_check_delimited_only`).
    """
    _check_delimited_only(source, path, options)
    columns = _columns(source, path, options)
    for what in roles:
        name = getattr(options, f"{what}_column")
        if name not in columns:
            if path.suffix.lower() in DELIMITED and len(columns) == 1:
                _refuse_one_column(source, path, columns[0], options)
            shown = ", ".join(map(visible, columns[:20])) + (f", ... ({len(columns)} in all)" if len(columns) > 20 else "")
            spaced = next((c for c in columns if visible_form(c) == name), None)
            advice = (
                f"the column {spaced!r} has {'spaces around' if spaced.strip() == name else 'invisible characters in'} its "
                f"name: pass --{what}-column {spaced!r}, or remove them"
                if spaced is not None
                else f"name the column{'s' * (len(roles) > 1)} with " + " and ".join(f"--{role}-column" for role in roles)
            )
            raise DataError(f"{_at(source, path)}: no {what} column {name!r} (columns found: {shown or 'none'}); {advice}")
    return columns


def _check_delimited_only(source: str, path: Path, options: TableOptions) -> None:
    """Raise DataError for --delimiter or --quoting given for a JSON Lines or Parquet file, which has
    no separator or quotes to read otherwise (the flag would change nothing)."""
    if path.suffix.lower() in DELIMITED:
        return
    given = [f"--delimiter {options.delimiter!r}"] * (options.delimiter is not None)
    given += [f"--quoting {options.quoting}"] * (options.quoting != "auto")
    if given:
        raise DataError(
            f"{_at(source, path)}: {' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to CSV and TSV only, "
            f"and this is {FORMATS[path.suffix.lower()]}; drop {'it' if len(given) == 1 else 'them'}"
        )


def _refuse_one_column(source: str, path: Path, column: str, options: TableOptions) -> None:
    """Raise DataError when a one-column header holds another separator than the file is read
    with: what was found, and --delimiter (or saving it with the format's own separator)."""
    ext, sep = path.suffix.lower(), _delimited(path, options)["sep"]
    found = max((c for c in SEPARATORS if c != sep), key=column.count)
    if column.count(found):
        name, flag = ("tab", "'\\t'") if found == "\t" else (repr(found), repr(found))
        resave = "comma-separated" if ext == ".csv" else "tab-separated"
        raise DataError(
            f"{_at(source, path)}: one column named {column!r}; the file looks {name}-separated, not as {FORMATS[ext]} "
            f"is read; pass --delimiter {flag}, or save it {resave}"
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
    # pandas', pyarrow's and json's parse errors are ValueErrors; pandas' warning of a wider first line too (`_frame`)
    except (ValueError, OSError, csv.Error, pd.errors.ParserWarning) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        fmt = FORMATS[path.suffix.lower()]
        raise DataError(f"{_at(source, path)}: cannot be read as {fmt} ({first}); check the file's format") from None


def _frame(source: str, path: Path, options: TableOptions) -> pd.DataFrame:
    """The text and label columns of a file (rows in the file's order, index 0..n-1); CSV and TSV
    cells as strings (a missing label NaN, an empty text ""); a JSON Lines text whose key is absent NaN.

    CSV and TSV are parsed whole, CHUNK_ROWS rows at a time (each chunk cut to the two columns),
    so that a line with more fields than the header is found; pandas' `usecols` would drop them.

    Raises DataError for a CSV or TSV line with more fields than the header.
    """
    columns = _check_columns(source, path, options)
    return _parsed(source, path, options, [options.text_column, options.label_column], len(columns))


def _parsed(source: str, path: Path, options: TableOptions, wanted: list[str], fields: int) -> pd.DataFrame:
    """The `wanted` columns of a file of `fields` columns, as `_frame` reads them.

    Raises DataError for a CSV or TSV line with more fields than the header.
    """
    ext = path.suffix.lower()
    with _parsing(source, path):
        if ext in DELIMITED:
            try:
                return _delimited_frame(path, options, wanted)
            except (pd.errors.ParserError, pd.errors.ParserWarning) as error:
                _refuse_more_fields(source, path, fields, options)
                _refuse_open_quote(source, path, options, error)
                raise
        if ext == ".parquet":
            return pd.read_parquet(path, columns=wanted)
        try:
            chunks = pd.read_json(path, lines=True, chunksize=CHUNK_ROWS, dtype=False, encoding="utf-8-sig")
            return pd.concat([chunk.reindex(columns=wanted) for chunk in chunks], ignore_index=True)
        except ValueError:
            for _ in _json_records(source, path):  # names the line pandas' message leaves out
                pass
            raise


def _delimited_frame(path: Path, options: TableOptions, wanted: list[str]) -> pd.DataFrame:
    """The `wanted` columns of a CSV or TSV file, all cells strings (a missing label NaN).

    Raises pandas' ParserError for a line with more fields than the header, or its ParserWarning
    when the first data line has more (pandas would otherwise take the first column as the index).
    """
    label = options.label_column
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        chunks = pd.read_csv(
            path,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_values={label: list(MISSING_LABELS)} if label in wanted else None,
            chunksize=CHUNK_ROWS,
            **_delimited(path, options),
        )
        return pd.concat([chunk[wanted] for chunk in chunks], ignore_index=True)


def _refuse_more_fields(source: str, path: Path, fields: int, options: TableOptions) -> None:
    """Raise DataError naming the lines that hold more fields than the header's `fields` (the file
    read again with the csv module); return when there is none (the parser failed for another reason)."""
    dialect = _delimited(path, options)
    more = [line for line, width in _records(path, options) if width > fields]
    if more:
        inside = "a tab" if dialect["sep"] == "\t" else repr(dialect["sep"])
        advice = "quote such texts" if dialect["quoting"] != csv.QUOTE_NONE else "remove or replace them"
        raise DataError(
            f"{_at(source, path)}: {_listed('line', more)} {_hold(more)} more fields than the header's {fields} "
            f"({inside} inside a text?); {advice}, or check --delimiter and --quoting"
        )


def _refuse_open_quote(source: str, path: Path, options: TableOptions, error: Exception) -> None:
    """Raise DataError naming the line of the record whose quote no later quote closes, where the
    parser's `error` says the file ends inside a quoted field (pandas names a row, counted its way);
    return otherwise."""
    if "EOF inside string" not in str(error):
        return
    line = _records(path, options)[-1][0]  # the quoted field runs to the end: it is the last record
    advice = "close or remove it" + (", or drop --quoting csv" if path.suffix.lower() == ".tsv" else "")
    raise DataError(
        f"{_at(source, path)}: line {line} opens a quoted field that no later quote closes (the file ends inside it); {advice}"
    )


def _reviews(source: str, path: Path, options: TableOptions) -> tuple[Reviews, Counter]:
    """The file's reviews, and the rows dropped by cause: "header" (`drop_header_rows`), "label"
    and "text" (`drop_missing`; a row without either counts as "label").

    Raises DataError for a file without rows, rows that repeat the header (unless
    `drop_header_rows`), a non-text value in the text column, a label that is no class name or
    integer, or rows without a label or a text (unless `drop_missing`).
    """
    frame, dropped = _frame(source, path, options), Counter()
    frame, dropped["header"] = _without_headers(source, path, frame, options)
    if frame.empty:
        raise DataError(f"{_at(source, path)}: holds a header but no rows; give a table with rows")
    text, label = frame[options.text_column], frame[options.label_column]
    no_label = label.isna().to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in label], bool)
    if no_label.any() and not options.drop_missing:
        first = frame.index[np.argmax(no_label)] + 1
        raise DataError(
            f"{_at(source, path)}: {no_label.sum():,} of {len(frame):,} rows have no label in column "
            f"{options.label_column!r} (the first: row {first}); fill them in, or pass --drop-missing to drop them"
            + _tsv_hint(path, options)
        )
    no_text = text.isna().to_numpy() & ~no_label
    if no_text.any() and not options.drop_missing:
        raise DataError(
            f"{_at(source, path)}: {no_text.sum():,} of {len(frame):,} rows have no text in column {options.text_column!r} "
            f"(absent or null; the first: {_where(path, options, frame.index[no_text][:1])}); "
            "fill them in, or pass --drop-missing to drop them"
        )
    dropped |= Counter(label=int(no_label.sum()), text=int(no_text.sum()))
    frame = frame[~(no_label | no_text)]
    if frame.empty:
        raise DataError(f"{_at(source, path)}: no row has a label in column {options.label_column!r}; check --label-column")
    texts = _texts(source, path, frame[options.text_column], options.text_column)
    return Reviews(texts, _labels(source, path, frame[options.label_column], options.label_column), None), dropped


def _without_headers(source: str, path: Path, frame: pd.DataFrame, options: TableOptions) -> tuple[pd.DataFrame, int]:
    """The frame without rows whose text cell is the text column's name and whose label cell is
    the label column's name (the header repeated, as files joined with `cat` hold it, a joined
    file's byte-order mark and spaces aside; the others keep their index, the data row they are in
    the file), and how many there were.

    Raises DataError naming their lines, unless `options.drop_header_rows`.
    """
    cells = [frame[c].astype(str).str.strip().str.lstrip(BOM) for c in (options.text_column, options.label_column)]
    header = ((cells[0] == options.text_column) & (cells[1] == options.label_column)).to_numpy()
    if header.any() and not options.drop_header_rows:
        rows = frame.index[header]
        raise DataError(
            f"{_at(source, path)}: {_where(path, options, rows)} {_hold(rows)} the header again "
            "(files joined with `cat`?); remove those rows, or pass --drop-header-rows to drop them"
        )
    return frame[~header], int(header.sum())


def _tsv_hint(path: Path, options: TableOptions) -> str:
    """What a refusal adds for a TSV file read without quotes: a line is a row."""
    if path.suffix.lower() == ".tsv" and _delimited(path, options)["quoting"] == csv.QUOTE_NONE:
        return "; a TSV line is one row (quotes are characters): if texts hold quoted line breaks, pass --quoting csv"
    return ""


def _where(path: Path, options: TableOptions, rows) -> str:
    """Where data rows (0 = the first) lie, as an error names them: "line 7", "lines 7, 9, 12, 40,
    41, … (52 in all)" (CSV, TSV, JSON Lines: the file's own line numbers, the first of a record
    that spans lines), or "row 7" (Parquet)."""
    rows = [int(r) for r in rows]
    if path.suffix.lower() == ".parquet":
        return _listed("row", [r + 1 for r in rows])
    starts = [line for line, _ in _records(path, options)]
    return _listed("line", [starts[r] for r in rows])


def _listed(what: str, numbers: list[int]) -> str:
    """ "line 7", or "lines 7, 9, 12, 40, 41, … (52 in all)": the first LINES_SHOWN numbers."""
    n = len(numbers)
    shown = ", ".join(map(str, numbers[:LINES_SHOWN])) + (f", … ({n:,} in all)" if n > LINES_SHOWN else "")
    return f"{what}{'s' * (n > 1)} {shown}"


def _hold(rows) -> str:
    """The verb after `_where`: "holds" for one row, "hold" for more."""
    return "holds" if len(rows) == 1 else "hold"


def _records(path: Path, options: TableOptions) -> list[tuple[int, int]]:
    """For each data row, as pandas reads the file, the line it starts on and its number of fields:
    read again record by record (CSV and TSV with the csv module, as the file's format is read;
    JSON Lines line by line, one field each), blank lines skipped as pandas skips them. Only on the
    way to an error."""
    delimited = path.suffix.lower() in DELIMITED
    with path.open(encoding="utf-8-sig", newline="" if delimited else None) as f:
        if not delimited:
            return [(number, 1) for number, line in enumerate(f, 1) if line.strip()]
        limit = csv.field_size_limit()
        csv.field_size_limit(sys.maxsize)  # a long text is one field
        try:
            found, dialect = [], _delimited(path, options)
            records, previous = csv.reader(f, delimiter=dialect["sep"], quoting=dialect["quoting"]), 0
            for record in records:
                if len(record) > 1 or (record and record[0].strip()):
                    found.append((previous + 1, len(record)))
                previous = records.line_num
        finally:
            csv.field_size_limit(limit)
    return found[1 + dialect["skiprows"] :]  # the line "sep=X" and the header hold no row


def _texts(source: str, path: Path, column: pd.Series, name: str) -> list[str]:
    """Each row's text ("" where the cell is empty or null).

    Raises DataError naming the first row (1 = the first data row) whose value is not text, or,
    for CSV and TSV, where every value is a number (a column of numbers is no text column).
    """
    if isinstance(column.dtype, pd.StringDtype):
        texts = column.fillna("").tolist()
        if path.suffix.lower() in DELIMITED and _all_numbers(column):
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
    """The labels as the file spells them: integers when every one is an integer (or a whole float, as
    a column with gaps holds them; int64, or exact Python ints beyond it), else strings (object
    array; true/false as "True"/"False"; the core reads strings that spell numbers as numbers,
    `labels.as_classes`).

    Raises DataError naming the first row whose label is neither a string nor an integer.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype(column.dtype.categories.dtype)
    if pd.api.types.is_integer_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return integer_array(column.tolist())  # exact: a uint64 beyond int64 is not wrapped
    if isinstance(column.dtype, pd.StringDtype):  # CSV and TSV: every label a string
        return column.to_numpy(dtype=object)
    spelled = [_class_of(v) for v in column.to_numpy(dtype=object)]
    if None in spelled:
        at = spelled.index(None)
        raise DataError(
            f"{_at(source, path)}: row {column.index[at] + 1} holds {_shown(column.iloc[at])} in the label column {name!r}, "
            f"not a class; --label-column must name a column of class names or integers"
        )
    if all(isinstance(v, int) for v in spelled):
        return integer_array(spelled)
    return np.array([str(v) for v in spelled], dtype=object)


def _class_of(value) -> str | int | None:
    """A label as a class: an integer (from an int or a whole float), a string, "True"/"False" for a
    truth value; None for anything else (a fraction, a list, ...)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, str):
        return value
    return None
