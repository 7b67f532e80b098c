"""Seeded, stratified splitting, shared by the core (validation carved from training, a test split
carved from a source that gives none).

Kept apart from the package's core, as `reviews` is, so that a reader can import it while the core
imports the readers.
"""

from __future__ import annotations

import numpy as np

from search.data.reviews import DataError


def shuffled_prefix(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices in a seeded random order, cut to the first `limit`."""
    order = np.random.default_rng(seed).permutation(len(labels))
    return order if limit is None else order[:limit]


def held_counts(counts: np.ndarray, fraction: float) -> np.ndarray:
    """How many of each class a split at `fraction` holds out: `round(n * fraction)` in total for
    n examples, as asked, shared by largest remainder.

    Each class starts from its own share rounded, `round(n_i * fraction)`; where those roundings
    do not add up to the total, the classes whose exact share lies furthest above (or below) its
    rounding take one more (or one fewer), ties to the class listed first. A class keeps at least
    one example on each side where its rounding gave it one. Where the roundings add up (two
    classes of equal size, as IMDB's), the counts are the roundings themselves.

    `counts`: examples per class (int). Returns an int array of the same shape.
    """
    counts = np.asarray(counts, np.int64)
    exact = counts * fraction
    held = np.array([round(x) for x in exact], np.int64)  # Python's round, as the split always used
    short = round(int(counts.sum()) * fraction) - int(held.sum())
    step = 1 if short > 0 else -1
    room = (held < counts - 1) if short > 0 else (held > 1)
    order = np.argsort(-(exact - held) * step, kind="stable")
    for index in [i for i in order if room[i]][: abs(short)]:
        held[index] += step
    return held


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices, held-out indices), both sorted: each label keeps its share on both sides,
    `held_counts` of each held out (`round(n * fraction)` in all), seeded.

    With `groups` (one integer per review), the held-out side is filled group by group in a seeded
    order, so each group lands on one side (except, per class, the one cut at the share); without,
    review by review. Raises DataError when a side would be empty.
    """
    rng = np.random.default_rng(seed + 1)
    names, counts = np.unique(labels, return_counts=True)
    kept, held = [], []
    for label, n_held in zip(names, held_counts(counts, fraction)):
        members = np.flatnonzero(labels == label)
        if groups is None:
            members = rng.permutation(members)
        else:  # whole groups in a seeded order, reviews shuffled within each
            group_names, group_of = np.unique(np.asarray(groups)[members], return_inverse=True)
            rank = rng.permutation(len(group_names))[group_of]
            members = members[np.lexsort((rng.random(len(members)), rank))]
        held.append(members[:n_held])
        kept.append(members[n_held:])
    kept_idx, held_idx = np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))
    if len(kept_idx) == 0 or len(held_idx) == 0:
        raise DataError(
            f"a share of {fraction} of {len(labels)} reviews leaves an empty split; use more reviews or another share"
        )
    return kept_idx, held_idx


def fewest_for(fraction: float) -> int:
    """The fewest examples a class needs so that `stratified_split` at `fraction` puts at least
    one of them on each side."""
    n = max(2, int(0.5 / min(fraction, 1 - fraction)) - 2)  # below it, one side rounds to nothing
    while not 1 <= round(n * fraction) <= n - 1:
        n += 1
    return n


def too_few(labels: np.ndarray, fraction: float, classes: list | None = None) -> tuple[object, int, int] | None:
    """(class, its count, the count it needs) for the first class in `classes` (default: the
    labels' distinct values) too rare for a stratified split at `fraction` to put one of it on each
    side (`fewest_for`); None when every class has enough."""
    needed = fewest_for(fraction)
    for name, count in _counts(labels, classes):
        if count < needed:
            return name, count, needed
    return None


def emptied(labels: np.ndarray, fraction: float, classes: list | None = None) -> tuple[object, int] | None:
    """(class, its count) for the first class in `classes` (default: the labels' distinct values)
    of two examples or more that a split at `fraction` would hold out whole, leaving it none to
    keep: the fraction, not the data, is then what to change. None when there is none."""
    for name, count in _counts(labels, classes):
        if count >= 2 and round(count * fraction) >= count:
            return name, count
    return None


def _counts(labels: np.ndarray, classes: list | None) -> list[tuple[object, int]]:
    """(class, its count) for each of `classes` (default: the labels' distinct values), 0 where absent."""
    names, counts = np.unique(labels, return_counts=True)
    count_of = dict(zip(names.tolist(), counts.tolist()))
    return [(name, count_of.get(name, 0)) for name in (names.tolist() if classes is None else classes)]
