"""Classify raw review texts with an exported model.

    python -m search.predict RUN_DIR "A moving, beautifully shot film." "Two hours I won't get back."

RUN_DIR may also be an exported model folder (best_model/) or its model.keras.
Prints one line per text: the probability that the review is positive, and the label.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.predict", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a run directory, its best_model/ folder, or a model.keras file")
    parser.add_argument("texts", nargs="+", help="review texts to classify")
    args = parser.parse_args(argv)

    from search.export import find_model, probabilities

    found = find_model(args.path)
    if found is None:
        print(f"error: {args.path}: no exported model (expected model.keras, best_model/model.keras in a finished run)", file=sys.stderr)
        return 2
    import keras

    model = keras.saving.load_model(found, safe_mode=True)
    for text, p in zip(args.texts, probabilities(model, args.texts)):
        label = "positive" if p >= 0.5 else "negative"
        preview = text if len(text) <= 60 else text[:57] + "..."
        print(f"{p:.4f}  {label:8s}  {preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
