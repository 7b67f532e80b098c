"""Labels as the user meant them: the one place where every source's labels become class names.

A string label loses its surrounding whitespace ("pos " is "pos"; counted); a string that spells
an integer is that integer ("7", " 7", "7.0" and 7 are one class, as pandas would read them as one
number) where every label of the split is one; labels that are equal up to case
(`str.casefold`) but spelled differently are refused, unless `fold_label_case` merges each group
under its most frequent spelling (counted). Integers and truth values are left as they are.

Kept apart from the package's core, as `reviews` is, so that `sources.read_reviews` can use it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np

from runfiles.documents import DataFacts
from search.data.reviews import DataError, LabelOptions, Reviews

INTEGER = re.compile(r"(-?(?:0|[1-9][0-9]*))(?:\.0*)?")
"""How a string label spells an integer class: digits, and a decimal point with zeros only ("1.0")."""
GROUPS_SHOWN = 3
"""Groups of spellings a refusal lists before it says how many there are in all."""


def as_classes(source: str, reviews: dict[str, Reviews], options: LabelOptions) -> tuple[dict[str, Reviews], DataFacts]:
    """The reviews with their labels as classes, and what that changed, as data facts: `labels_stripped` (string
    labels that had surrounding whitespace) and, with `options.fold_label_case`,
    `labels_case_folded` ({spelling kept: {spelling merged into it: count}}); each only when
    non-zero.

    Raises:
        DataError: one line, for labels equal up to case but spelled differently (each group's
        spellings with their counts, all splits together), unless `options.fold_label_case`.
    """
    stripped, facts = {}, DataFacts()
    for split, r in reviews.items():
        stripped[split] = _stripped(np.asarray(r.labels))
    changed = sum(n for _, n in stripped.values())
    if changed:
        facts.labels_stripped = changed
    spellings = Counter(v for labels, _ in stripped.values() for v in labels.tolist() if isinstance(v, str))
    groups = _case_groups(spellings)
    if groups and not options.fold_label_case:
        raise DataError(f"--data {source}: {_refusal(groups)}")
    if groups:
        kept = {spelling: group[0][0] for group in groups for spelling, _ in group}
        stripped = {s: (_renamed(labels, kept), 0) for s, (labels, _) in stripped.items()}
        facts.labels_case_folded = {group[0][0]: dict(group[1:]) for group in groups}
    return {s: r._replace(labels=stripped[s][0]) for s, r in reviews.items()}, facts


def _stripped(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """String labels without surrounding whitespace, integer strings as integers (int64 when every
    label is an integer), and how many had whitespace; the array itself when nothing changes."""
    if labels.dtype.kind not in "OU":
        return labels, 0
    values = labels.tolist()
    clean = [v.strip() if isinstance(v, str) else v for v in values]
    changed = sum(a != b for a, b in zip(values, clean))
    if clean and all(_integer(v) for v in clean):
        return np.array([int(INTEGER.fullmatch(v).group(1)) if isinstance(v, str) else int(v) for v in clean], np.int64), changed
    if not changed:
        return labels, 0
    return np.array(clean, dtype=str if labels.dtype.kind == "U" else object), changed


def _integer(value) -> bool:
    """Whether a label is an integer class: an int (not a truth value) or a string spelling one."""
    if isinstance(value, str):
        return bool(INTEGER.fullmatch(value))
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _case_groups(spellings: Counter) -> list[list[tuple[str, int]]]:
    """Each group of two or more spellings equal up to case, most frequent first (of a tie, the
    case-folded spelling, then by spelling), as [(spelling, count), ...]; the groups by their first
    spelling."""
    by_fold: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for spelling, count in spellings.items():
        by_fold[spelling.casefold()].append((spelling, count))
    groups = [sorted(g, key=lambda sc: (-sc[1], sc[0] != sc[0].casefold(), sc[0])) for g in by_fold.values() if len(g) > 1]
    return sorted(groups, key=lambda g: g[0][0])


def _refusal(groups: list[list[tuple[str, int]]]) -> str:
    """The refusal's text: the first GROUPS_SHOWN groups of spellings with their counts."""
    shown = "; ".join(", ".join(f"{s!r} ({n:,})" for s, n in group) for group in groups[:GROUPS_SHOWN])
    more = f"; … ({len(groups)} groups in all)" if len(groups) > GROUPS_SHOWN else ""
    return (
        f"labels that differ only in case would be separate classes: {shown}{more}; write each class one way, "
        "or pass --fold-label-case to merge each group under its most frequent spelling"
    )


def _renamed(labels: np.ndarray, kept: dict[str, str]) -> np.ndarray:
    """The labels with each spelling in `kept` replaced by the spelling its group keeps."""
    values = [kept.get(v, v) if isinstance(v, str) else v for v in labels.tolist()]
    return np.array(values, dtype=str if labels.dtype.kind == "U" else object)
