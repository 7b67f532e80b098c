"""Labels as the user meant them: the one place where every source's labels become class names.

A string label loses what nobody sees: its surrounding whitespace ("pos " is "pos"; counted as
"labels_stripped"), and its invisible differences (counted as "labels_normalized"): it is put in
Unicode's composed form (NFC: "café" typed with a combining accent is "café") and its format
characters are removed (a zero-width space, a byte-order mark that `cat` left inside a file).
Labels that still differ only in case or in Unicode compatibility form (NFKC: "ｐｏｓ" and "pos",
"ﬁne" and "fine") are refused, unless `fold_label_case` merges each group under its most frequent
spelling (counted). Where every label of a split spells a number in ASCII digits ("7", "07", "+7",
"7.0", "7e0", as pandas reads a column of numbers), the split's labels are those numbers: whole
ones integers, exact however large; the spellings that are not a number's own ("07" → 7) are
counted ("labels_as_numbers"). Integers and truth values a source gives are left as they are.

Kept apart from the package's core, as `reviews` is, so that `sources.read_reviews` can use it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from decimal import Decimal

import numpy as np

from runfiles.documents import DataFacts
from search.data.reviews import DataError, LabelOptions, Reviews

NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""How a string label spells a number: ASCII digits with a sign, a decimal point or an exponent,
as pandas' parser reads a number ("07", "+7", "7.0", "7e0"; not "7_0", full-width or Arabic digits)."""
MAX_DIGITS = 100
"""The most digits a label's number may have before the point (beyond, it is a name, not a number)."""
GROUPS_SHOWN = 3
"""Groups of spellings a refusal lists before it says how many there are in all."""
INT64 = np.iinfo(np.int64)


def as_classes(source: str, reviews: dict[str, Reviews], options: LabelOptions) -> tuple[dict[str, Reviews], DataFacts]:
    """The reviews with their labels as classes, and what that changed, as data facts, each only
    when non-zero: `labels_stripped` (string labels that had surrounding whitespace),
    `labels_normalized` (that had invisible differences), `labels_as_numbers` ({number: {spelling
    read as it: count}}) and, with `options.fold_label_case`, `labels_case_folded` ({spelling kept:
    {spelling merged into it: count}}).

    Raises:
        DataError: one line, for labels equal up to case or compatibility form but spelled
        differently (each group's spellings with their counts, all splits together), unless
        `options.fold_label_case`.
    """
    cleaned, stripped, normalized = {}, 0, 0
    for split, r in reviews.items():
        cleaned[split], spaces, invisible = _cleaned(np.asarray(r.labels))
        stripped, normalized = stripped + spaces, normalized + invisible
    facts = DataFacts(labels_stripped=stripped or None, labels_normalized=normalized or None)
    spellings = Counter(v for labels in cleaned.values() for v in labels.tolist() if isinstance(v, str))
    groups = _case_groups(spellings)
    if groups and not options.fold_label_case:
        raise DataError(f"--data {source}: {_refusal(groups)}")
    if groups:
        kept = {spelling: group[0][0] for group in groups for spelling, _ in group}
        cleaned = {s: _renamed(labels, kept) for s, labels in cleaned.items()}
        facts.labels_case_folded = {group[0][0]: dict(group[1:]) for group in groups}
    numbers: dict[str, Counter] = defaultdict(Counter)
    for split, labels in cleaned.items():
        cleaned[split] = _as_numbers(labels, numbers)
    if numbers:
        facts.labels_as_numbers = {number: dict(spelled) for number, spelled in sorted(numbers.items())}
    return {s: r._replace(labels=cleaned[s]) for s, r in reviews.items()}, facts


def visible_form(label: str) -> str:
    """A label without what nobody sees: format characters removed, Unicode's composed form (NFC),
    surrounding whitespace stripped."""
    return unicodedata.normalize("NFC", "".join(c for c in label if unicodedata.category(c) != "Cf")).strip()


def integer_array(values: list[int]) -> np.ndarray:
    """Integers as an int64 array, or as an object array of Python ints where one lies outside int64
    (kept exact, never wrapped)."""
    if all(INT64.min <= int(v) <= INT64.max for v in values):
        return np.array(values, np.int64)
    out = np.empty(len(values), dtype=object)
    out[:] = [int(v) for v in values]
    return out


def _cleaned(labels: np.ndarray) -> tuple[np.ndarray, int, int]:
    """String labels in their visible form (`visible_form`), how many had surrounding whitespace,
    and how many had invisible differences besides; the array itself when nothing changes."""
    if labels.dtype.kind not in "OU":
        return labels, 0, 0
    values = labels.tolist()
    stripped = [v.strip() if isinstance(v, str) else v for v in values]
    clean = [visible_form(v) if isinstance(v, str) else v for v in values]
    spaces, invisible = sum(a != b for a, b in zip(values, stripped)), sum(a != b for a, b in zip(stripped, clean))
    if clean == values:
        return labels, 0, 0
    return np.array(clean, dtype=str if labels.dtype.kind == "U" else object), spaces, invisible


def _as_numbers(labels: np.ndarray, spelled: dict[str, Counter]) -> np.ndarray:
    """A split's labels as numbers where every one is a number or spells one (`_number`): integers
    (`integer_array`) where all are whole, else an object array of ints and floats; the labels as
    they are otherwise. Adds to `spelled` each spelling that is not its number's own ({"7": {"07": n}})."""
    if labels.dtype.kind not in "OU" or not len(labels):
        return labels
    values = labels.tolist()
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return labels
    for value, number in zip(values, numbers):
        if isinstance(value, str) and value != str(number):
            spelled[str(number)][value] += 1
    if all(isinstance(n, int) for n in numbers):
        return integer_array(numbers)
    out = np.empty(len(numbers), dtype=object)
    out[:] = numbers
    return out


def _number(value) -> int | float | None:
    """The number a label is or spells: an int for a whole one (exact: "12345678901234567890"),
    a float for another; None for a truth value, a name, or a number of more than MAX_DIGITS digits."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if not isinstance(value, str) or not NUMBER.fullmatch(value):
        return None
    number = Decimal(value)
    if number.adjusted() >= MAX_DIGITS:
        return None
    whole = number == number.to_integral_value()
    return int(number) if whole else float(number)


def _compatible(spelling: str) -> str:
    """A spelling up to case and compatibility form (Unicode's NFKC case folding: "ＰＯＳ", "Pos" → "pos")."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", spelling).casefold())


def _case_groups(spellings: Counter) -> list[list[tuple[str, int]]]:
    """Each group of two or more spellings equal up to case and compatibility form, most frequent
    first (of a tie, the folded spelling, then by spelling), as [(spelling, count), ...]; the
    groups by their first spelling."""
    by_fold: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for spelling, count in spellings.items():
        by_fold[_compatible(spelling)].append((spelling, count))
    groups = [sorted(g, key=lambda sc: (-sc[1], sc[0] != _compatible(sc[0]), sc[0])) for g in by_fold.values() if len(g) > 1]
    return sorted(groups, key=lambda g: g[0][0])


def _refusal(groups: list[list[tuple[str, int]]]) -> str:
    """The refusal's text: the first GROUPS_SHOWN groups of spellings with their counts."""
    shown = "; ".join(", ".join(f"{s!r} ({n:,})" for s, n in group) for group in groups[:GROUPS_SHOWN])
    more = f"; … ({len(groups)} groups in all)" if len(groups) > GROUPS_SHOWN else ""
    in_case = all(len({s.casefold() for s, _ in group}) == 1 for group in groups)
    differ = "case" if in_case else "case or Unicode compatibility form (full-width letters, ligatures)"
    return (
        f"labels that differ only in {differ} would be separate classes: {shown}{more}; write each class one way, "
        "or pass --fold-label-case to merge each group under its most frequent spelling"
    )


def _renamed(labels: np.ndarray, kept: dict[str, str]) -> np.ndarray:
    """The labels with each spelling in `kept` replaced by the spelling its group keeps."""
    values = [kept.get(v, v) if isinstance(v, str) else v for v in labels.tolist()]
    return np.array(values, dtype=str if labels.dtype.kind == "U" else object)
