"""Seeded, stratified splitting, shared by the core (validation carved from training) and the table
reader (a test split carved from one file).

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


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices, held-out indices), both sorted: each label keeps its share on both sides,
    `round(n * fraction)` of its n held out, seeded.

    With `groups` (one integer per review), the held-out side is filled group by group in a seeded
    order, so each group lands on one side (except, per class, the one cut at the share); without,
    review by review. Raises DataError when a side would be empty.
    """
    rng = np.random.default_rng(seed + 1)
    kept, held = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if groups is None:
            members = rng.permutation(members)
        else:  # whole groups in a seeded order, reviews shuffled within each
            names, group_of = np.unique(np.asarray(groups)[members], return_inverse=True)
            rank = rng.permutation(len(names))[group_of]
            members = members[np.lexsort((rng.random(len(members)), rank))]
        n_held = round(len(members) * fraction)
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
    n = 2
    while not 1 <= round(n * fraction) <= n - 1:
        n += 1
    return n


def too_few(labels: np.ndarray, fraction: float, classes: list | None = None) -> tuple[object, int, int] | None:
    """(class, its count, the count it needs) for the first class in `classes` (default: the
    labels' distinct values) too rare for a stratified split at `fraction` to put one of it on each
    side (`fewest_for`); None when every class has enough."""
    needed = fewest_for(fraction)
    names, counts = np.unique(labels, return_counts=True)
    count_of = dict(zip(names.tolist(), counts.tolist()))
    for name in names.tolist() if classes is None else classes:
        if count_of.get(name, 0) < needed:
            return name, count_of.get(name, 0), needed
    return None
