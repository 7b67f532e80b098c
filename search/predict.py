"""Classify raw review texts with an exported model.

    python -m search.predict RUN_DIR "A moving, beautifully shot film." "Two hours I won't get back."
    python -m search.predict RUN_DIR --file reviews.txt --json      # one review per line; - reads standard input

RUN_DIR may also be an exported model folder (best_model/) or its model.keras. Prints one
line per text, in the order given: the most probable class (its name, from the model's
card.json), its probability and the text's start; with --json (or --jsonl), one JSON object
per line instead ({"text", "label", "probability": the label's, "probabilities": every
class's, and "line": the text's line number in --file, or "argument": its position among
the arguments). Any string is accepted: bytes that are not UTF-8 are replaced, an empty
text (an empty line) gets probabilities like any other.

A file's texts are its lines split at "\n" only ("\r\n" counts as one line end), so each
input line gets exactly one answer: characters that `str.splitlines` would also break at
(U+0085, U+2028, form feed, a lone "\r") stay inside their review.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from pathlib import Path

from runfiles.cli import ArgumentParser, UsageError, fail, given_path
from runfiles.documents import Card
from search.console import Progress, quiet_libraries
from search.export import find_model, probabilities

BATCH = 256
"""Texts classified per call of the model."""
UNNAMED = ["negative", "positive"]
"""The class names of a two-class model whose card names none (exported before classes were named)."""


def class_names(model_file: Path, outputs: int) -> list[str]:
    """The class names in the model's output order: its card.json's classes, else UNNAMED for
    two classes, else "class 0", "class 1", ..."""
    card = Card.read(model_file.parent)
    if card and card.classes:
        return [str(name) for name in card.classes]
    return UNNAMED if outputs == 2 else [f"class {i}" for i in range(outputs)]


def parse_args(argv: list[str]):
    parser = ArgumentParser(prog="python -m search.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=given_path, help="a run directory, its best_model/ folder, or a model.keras file")
    parser.add_argument("texts", nargs="*", help="review texts to classify")
    parser.add_argument("--file", metavar="FILE", help="read reviews from FILE, one per line ('-': standard input)")
    parser.add_argument(
        "--json", "--jsonl", action="store_true", help="print one JSON object per text, with its line or argument number"
    )
    return parser.parse_intermixed_args(argv)


def read_texts(args) -> list[tuple[dict, str]]:
    """The texts to classify, each with where it came from ({"argument": N} or {"line": N}, from 1):
    the arguments (undecodable bytes replaced), then --file's lines (see `lines`)."""
    texts = [({"argument": i}, os.fsencode(text).decode("utf-8", errors="replace")) for i, text in enumerate(args.texts, 1)]
    if args.file is not None:
        try:
            data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        except OSError as error:
            raise UsageError(
                f"--file {args.file}: cannot read it ({error.strerror}); give a text file or - for standard input"
            ) from None
        texts += [({"line": i}, line) for i, line in enumerate(lines(data.decode("utf-8", errors="replace")), 1)]
    if not texts:
        raise UsageError("no texts to classify: give them as arguments or with --file FILE (- for standard input)")
    return texts


def lines(text: str) -> list[str]:
    """A file's lines: split at "\n" alone, a "\r" before it dropped, no empty line after a final "\n"."""
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    return [part.removesuffix("\r") for part in parts]


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        texts = read_texts(args)
        found = find_model(args.path)
        if found is None:
            raise UsageError(f"{args.path}: no exported model (expected model.keras, best_model/model.keras in a finished run)")
    except UsageError as error:
        return fail(error)
    with quiet_libraries(False, Progress()):  # TensorFlow's start-up lines go nowhere
        import keras

        import models.text  # noqa: F401  registers the standardization and the layers the model holds

        model = keras.saving.load_model(found, safe_mode=True)
        names = None
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            answers = probabilities(model, [text for _, text in batch])
            names = names or class_names(found, answers.shape[1])
            for (where, text), p in zip(batch, answers, strict=True):
                print(_line(where, text, dict(zip(names, map(float, p), strict=True)), args.json), flush=False)
        sys.stdout.flush()
    return 0


def _line(where: dict, text: str, probabilities: dict[str, float], as_json: bool) -> str:
    """One output line per input, however it is read: in JSON, the characters a line reader breaks
    at are escaped too; in plain text, every control or separator character shows as an escape.
    The label is the most probable class (the first of equals, in the model's order)."""
    label = max(probabilities, key=probabilities.get)
    if as_json:
        answer = {**where, "text": text, "label": label, "probability": probabilities[label], "probabilities": probabilities}
        return json.dumps(answer, ensure_ascii=False).translate(JSON_ESCAPES)
    preview = text if len(text) <= 60 else text[:57] + "..."
    width = max(8, *map(len, probabilities))
    return f"{probabilities[label]:.4f}  {label:{width}s}  {_printable(preview)}"


JSON_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}
"""Characters that JSON leaves as they are but str.splitlines() breaks at (the others are escaped already)."""


def _printable(text: str) -> str:
    """`text` with control and line- or paragraph-separator characters as escapes (\\r, \\x1b, \\u2028)."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


if __name__ == "__main__":
    sys.exit(main())
