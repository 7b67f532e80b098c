"""A benchmark, not a test: reading a large vectors file, with gensim's full load and with the streaming reader.

    python -m tools.vectorsbench --words 1000000 --dim 300 --vocabulary 20000

Writes a vectors file of WORDS random words x DIM random values (seeded; word2vec text with a header,
as fastText's wiki-news-300d-1M.vec, or GloVe text with --format glove; 1M x 300 is about 2.7 GiB) in
a temporary folder (removed at the end, unless --keep), and a vocabulary of VOCABULARY words: 95%
drawn from the file's (a tenth of its words capitalized, some with an apostrophe or a hyphen, so
that matching folds them), the rest absent from it. Then reads it for the vocabulary both ways
(`search.data.vectors.read_vectors`, engine "gensim": `KeyedVectors.load_word2vec_format` of the
whole file, then the vocabulary's rows; engine "stream": line by line, parsing only the vocabulary's
rows), each in a fresh process (multiprocessing's spawn), and prints for each its wall and CPU
time, its resident memory before reading (its libraries loaded) and its peak (VmHWM,
`search.serving.peak_resident_mib`, MiB); then whether the two matrices are equal, and the ratios
gensim / stream. Both times include the sha256 of the file (`read_vectors` fingerprints it).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import shutil
import string
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = ("gensim", "stream")
VALUES = 1 << 16
"""Distinct values written (each as GloVe writes them, up to 6 decimals): rows are drawn from them."""
IN_FILE = 0.95
"""The share of the vocabulary's words that the file holds."""


def random_words(count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct words: 3 to 9 random lower-case letters and a suffix that makes each one
    unique; a tenth capitalized, one in a hundred with an apostrophe or a hyphen inside."""
    letters = np.array(list(string.ascii_lowercase))
    lengths = rng.integers(3, 10, count)
    words = []
    for i, length in enumerate(lengths):
        word = "".join(letters[rng.integers(0, 26, length)]) + np.base_repr(i, 36).lower()
        kind = rng.random()
        if kind < 0.1:
            word = word.capitalize()
        elif kind < 0.11:
            word = word[:2] + ("'" if kind < 0.105 else "-") + word[2:]
        words.append(word)
    return words


def write_file(path: Path, words: list[str], dim: int, fmt: str, rng: np.random.Generator) -> None:
    """The vectors file: each word and `dim` values drawn from a normal distribution of standard
    deviation 0.4 (GloVe's scale), written with up to 6 decimals."""
    values = np.array([f"{v:.6g}".encode() for v in rng.normal(0.0, 0.4, VALUES)], dtype=object)
    with path.open("wb", buffering=1 << 22) as f:
        if fmt == "word2vec":
            f.write(f"{len(words)} {dim}\n".encode())
        for start in range(0, len(words), 10_000):
            picks = rng.integers(0, VALUES, size=(min(10_000, len(words) - start), dim))
            for word, row in zip(words[start : start + 10_000], picks):
                f.write(word.encode() + b" " + b" ".join(values[row]) + b"\n")


def vocabulary_of(words: list[str], size: int, rng: np.random.Generator) -> list[str]:
    """A run's vocabulary: "", "[UNK]", then IN_FILE of `size` words drawn from the file's words
    (standardized: lower case, apostrophes dropped; a hyphenated word's first part), the rest new."""
    from models.folding import standardized

    picked = [standardized(words[i]).split()[0] for i in rng.choice(len(words), int(size * IN_FILE), replace=False)]
    kept = list(dict.fromkeys(picked))
    absent = [f"absent{i}" for i in range(size - 2 - len(kept[: size - 2]))]
    return ["", "[UNK]", *kept[: size - 2], *absent]


def measure(path: str, vocabulary: list[str], engine: str) -> dict:
    """In this (fresh) process: read the file for the vocabulary; wall and CPU time (s), resident
    memory before and peak (MiB), the coverage and a digest of the matrix."""
    from search.data.vectors import read_vectors
    from search.serving import peak_resident_mib

    if engine == "gensim":
        import gensim.models  # noqa: F401  loaded before the clock starts, as the streaming reader's libraries are
    before = _resident_mib()
    started, cpu_started = time.perf_counter(), time.process_time()
    vectors = read_vectors(path, vocabulary, engine=engine)
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu_started,
        "before_mib": before,
        "peak_mib": peak_resident_mib(),
        "coverage": vectors.vocabulary_coverage,
        "rows": vectors.rows,
        "matrix_sha256": hashlib.sha256(vectors.matrix.tobytes()).hexdigest(),
    }


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def measured(path: Path, vocabulary: list[str], engine: str) -> dict:
    """`measure` in a fresh process (spawn): its peak is its own."""
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(measure, (str(path), vocabulary, engine))


def report(results: dict[str, dict], size_mib: float, words: int, dim: int) -> str:
    """The lines printed: each engine's wall time and memory, whether they agree, the ratios."""
    lines = [f"{words:,} words x {dim} ({size_mib:,.0f} MiB)"]
    for engine, r in results.items():
        lines.append(
            f"{engine:7} {r['wall_s']:7.1f} s ({r['cpu_s']:,.1f} CPU s)   {r['peak_mib']:7,.0f} MiB peak "
            f"({r['before_mib']:,.0f} before reading)   coverage {r['coverage']:.1%}"
        )
    if set(ENGINES) <= set(results):
        gensim, stream = results["gensim"], results["stream"]
        lines.append(f"same matrix: {gensim['matrix_sha256'] == stream['matrix_sha256']}")
        lines.append(
            f"gensim / stream: {gensim['wall_s'] / stream['wall_s']:.2f}x the time "
            f"({gensim['cpu_s'] / stream['cpu_s']:.2f}x the CPU time), "
            f"{gensim['peak_mib'] / stream['peak_mib']:.2f}x the peak memory"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the file, read it each way in a fresh process, print the lines."""
    parser = argparse.ArgumentParser(prog="python -m tools.vectorsbench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1_000_000, help="words in the file (default: %(default)s)")
    parser.add_argument("--dim", type=int, default=300, help="numbers per word (default: %(default)s)")
    parser.add_argument("--vocabulary", type=int, default=20_000, help="the run's vocabulary size (default: %(default)s)")
    parser.add_argument("--format", choices=("word2vec", "glove"), default="word2vec", help="(default: %(default)s)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the file into this folder and keep it (or reuse it there)")
    args = parser.parse_args(argv)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="vectorsbench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"vectors-{args.words}x{args.dim}.{'vec' if args.format == 'word2vec' else 'txt'}"
    try:
        rng = np.random.default_rng(args.seed)
        words = random_words(args.words, rng)
        vocabulary = vocabulary_of(words, args.vocabulary, rng)
        if not path.is_file():
            started = time.perf_counter()
            write_file(path, words, args.dim, args.format, rng)
            print(f"wrote {path} in {time.perf_counter() - started:.0f} s", flush=True)
        del words
        results = {}
        for engine in args.engines:
            results[engine] = measured(path, vocabulary, engine)
            print(f"{engine}: {results[engine]['wall_s']:.1f} s", flush=True)
        print(report(results, path.stat().st_size / 2**20, args.words, args.dim))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
