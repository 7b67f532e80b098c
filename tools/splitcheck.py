"""How much of its movies validation shares with training, split by review or by blocks of ids.

    python -m tools.splitcheck --data ../shared/datasets/aclImdb_v1_labelled.tar.gz

aclImdb's test movies are disjoint from its training movies (Maas et al. 2011), so a
validation split that shares movies with training can reward a model for remembering a
film's name. Two measurements, on the raw text:

- neighbours: how often reviews with neighbouring file ids of one class share two or more
  rare names (capitalized words in at most 30 training reviews), against pairs 100 ids apart
  and random pairs: the ids' grouping by movie;
- tied names: the share of validation (and test) reviews that hold a rare name (in 3 to 30
  training reviews) which the training reviews tie to the review's own label (80% of them or
  more), for a split review by review (`val_block=1`) and by blocks of `--val-block` ids.
  A validation split that mirrors the test split scores about what the test split scores.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

import numpy as np

from runfiles.cli import ArgumentParser, UsageError, fail
from search.data import TFDS_SOURCE, DataConfig, DataError, default_source, read_reviews, select_splits, split_text

RARE = 30
"""A name is rare when at most this many training reviews hold it."""
NAME = re.compile(r"\b[A-Z][a-z]{3,}\b")


def names(text: str) -> set[str]:
    return set(NAME.findall(text))


def neighbours(texts: list[str], labels: np.ndarray, ids: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Share of pairs of one class sharing >= 2 rare names: ids 1 apart, 100 apart, random."""
    held = [names(t) for t in texts]
    counts = Counter(n for h in held for n in h)
    rare = [{n for n in h if counts[n] <= RARE} for h in held]
    rng = np.random.default_rng(seed)
    out = {"1 apart": [], "100 apart": [], "random": []}
    for label in (0, 1):
        order = np.flatnonzero(labels == label)[np.argsort(ids[labels == label])]
        for key, gap in (("1 apart", 1), ("100 apart", 100)):
            out[key] += [len(rare[a] & rare[b]) >= 2 for a, b in zip(order[:-gap], order[gap:])]
        pairs = [rng.choice(order, 2, replace=False) for _ in order]
        out["random"] += [len(rare[a] & rare[b]) >= 2 for a, b in pairs]
    return {key: float(np.mean(values)) for key, values in out.items()}


def tied_names(splits: dict) -> dict[str, float]:
    """Share of validation and test reviews holding a rare name the training reviews tie to their label."""
    train_texts, train_labels = splits["train"]
    by_label = [Counter(), Counter()]
    for text, label in zip(train_texts, train_labels):
        by_label[int(label)].update(names(text))

    def tied(text: str, label: int) -> bool:
        for n in names(text):
            own, total = by_label[label][n], by_label[0][n] + by_label[1][n]
            if 3 <= total <= RARE and own >= 0.8 * total:
                return True
        return False

    return {name: float(np.mean([tied(t, int(y)) for t, y in zip(*splits[name])])) for name in ("val", "test")}


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m tools.splitcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_source(), help="an aclImdb folder or .tar.gz (default: %(default)s)")
    parser.add_argument("--val-block", type=int, default=DataConfig.val_block, help="ids per block (default: %(default)s)")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
        configs = [DataConfig(source=args.data, val_block=1), DataConfig(source=args.data, val_block=args.val_block)]
        if args.data == TFDS_SOURCE:
            raise DataError(f"--data {args.data}: keeps no file ids; give an aclImdb folder or .tar.gz")
        reviews, _ = read_reviews(args.data)
    except (UsageError, DataError) as error:
        return fail(error)
    shares = neighbours(*reviews["train"])
    print("training reviews sharing >= 2 rare names: " + ", ".join(f"ids {k} {v:.2%}" for k, v in shares.items()))
    for config in dict.fromkeys(configs):
        tied = tied_names(select_splits(reviews, config))
        label = split_text(reviews, config)
        print(f"{label}: reviews holding a rare name tied to their label: validation {tied['val']:.1%}, test {tied['test']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
