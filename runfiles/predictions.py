"""Per-example test predictions: what each model evaluated on the test split predicted for each
test example, kept so that intervals and comparisons (reports.claims) can be computed again from
the run directory alone.

One CSV per model, columns `index` (the example's position in the run's test split, which the
data fingerprint fixes), `label` (its true class) and `predicted` (the model's class), classes
as indices into run.json's `classes`. The exported model's lies beside its card
(best_model/test_predictions.csv, swapped in with the export); every other model's in
DIR/predictions/NAME.csv, named by the functions below; those of models that summary.json and
baseline.json no longer record are removed as they are written (`keep_recorded`). Standard
library and the run's documents only; files are replaced at once (runfiles.io).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from runfiles.io import read_rows, write_rows
from runfiles.layout import OBJECTIVE, PREDICTIONS_FILE, RunDir

COLUMNS = ["index", "label", "predicted"]
"""The columns of a predictions file."""
EXPORTED = "exported"
"""The exported model's predictions' name (best_model/test_predictions.csv) in `read_all`'s answer."""
LINEAR = "linear"
"""The linear baseline's predictions' name (search.linear)."""
ENSEMBLE = "ensemble"
"""The mean-logit ensemble of the refits' (--ensemble)."""
CV_LINEAR = "cv-linear"
"""The linear baseline's out-of-fold predictions over the run's recorded folds (DIR/cv_folds.csv),
made on a run without a test split (search.baseline); like `cross_validated`'s, of train + validation."""


def certified(trial_id: str, seed: int) -> str:
    """The name of a certification seed's model's predictions: "trial_0003-seed-2"."""
    return f"{trial_id}-seed-{seed}"


def refit(seed: int) -> str:
    """The name of a refit's predictions (the exported configuration on train + validation): "refit-seed-2"."""
    return f"refit-seed-{seed}"


def ablation(part: str, seed: int) -> str:
    """The name of an ablation model's predictions (`part`: "network" or "linear"): "network-alone-seed-2"."""
    return f"{part}-alone-seed-{seed}"


def cross_validated(trial_id: str, seed: int) -> str:
    """The name of a configuration's out-of-fold predictions with one seed (--cv): "cv-trial_0003-seed-2";
    their examples are the labelled training examples (train + validation), not the test split's."""
    return f"cv-{trial_id}-seed-{seed}"


def path_of(run_dir: RunDir, name: str) -> Path:
    """Where model `name`'s predictions lie in `run_dir`."""
    return run_dir.predictions / f"{name}.csv"


def exported(run_dir: RunDir) -> Path:
    """Where the exported model's predictions lie: beside its card."""
    return run_dir.best_model / PREDICTIONS_FILE


def write(path: Path, labels: Sequence[int], predicted: Sequence[int]) -> None:
    """Write one model's predictions [n] for the test examples' `labels` [n] (class indices),
    replacing the file at once; its folder is made if needed. ValueError when the lengths differ."""
    if len(labels) != len(predicted):
        raise ValueError(f"{path}: {len(predicted)} predictions for {len(labels)} test examples")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rows = ({"index": i, "label": int(y), "predicted": int(p)} for i, (y, p) in enumerate(zip(labels, predicted, strict=True)))
    write_rows(path, COLUMNS, rows)


def read(path: Path) -> tuple[list[int], list[int]] | None:
    """(labels, predicted), each [n] in the test split's order, from a predictions file; None when
    it is absent, or when it is not one (a missing column, a cell that is not an integer, or rows
    out of order)."""
    rows = read_rows(path)
    try:
        if not rows or [int(r["index"]) for r in rows] != list(range(len(rows))):
            return None
        return [int(r["label"]) for r in rows], [int(r["predicted"]) for r in rows]
    except (KeyError, TypeError, ValueError):
        return None


def read_all(run_dir: RunDir) -> dict[str, tuple[list[int], list[int]]]:
    """Every model's predictions in `run_dir`, {name: (labels, predicted)}: the export's as EXPORTED,
    each file of DIR/predictions/ by its name; files that are not predictions are left out."""
    paths = {EXPORTED: exported(run_dir)} | {p.stem: p for p in sorted(run_dir.predictions.glob("*.csv"))}
    found = {name: read(path) for name, path in paths.items()}
    return {name: value for name, value in found.items() if value is not None}


def recorded(summary, baseline) -> set[str]:
    """The names of the predictions that summary.json's certification (its seeds, refits, ensemble,
    ablation and cross-validation) and baseline.json (`summary`, `baseline`: their documents, or
    None) record: what a report may read from DIR/predictions/. The linear baseline's out-of-fold
    predictions count while the run's folds are those it was cross-validated on (the same K)."""
    certification = summary.certification if summary is not None else None
    folds = certification.cross_validation if certification is not None else None
    names = set()
    if certification is not None:
        names |= {certified(c.trial_id, s.seed) for c in certification.configurations for s in c.seeds}
        names |= {refit(s.seed) for s in certification.refit.seeds} if certification.refit else set()
        names |= {ENSEMBLE} if certification.ensemble else set()
        found = certification.ablation
        parts = {"network": found.network, "linear": found.linear} if found else {}
        names |= {ablation(part, s.seed) for part, alone in parts.items() if alone for s in alone.seeds}
        names |= {cross_validated(c.trial_id, seed) for c in (folds.configurations if folds else []) for seed in c.seeds}
    if baseline is not None:
        names |= set(baseline.models)
        names |= {LINEAR} if baseline.linear and baseline.linear.test_accuracy is not None else set()
        same_folds = baseline.linear and folds and baseline.linear.cv_folds == folds.k  # the run's seed makes the rest
        names |= {CV_LINEAR} if same_folds else set()
    return names


def keep_recorded(run_dir: RunDir) -> list[str]:
    """Remove the files of DIR/predictions/ whose models summary.json and baseline.json no longer
    record (a configuration certified before a resumed run found a better one, an ablation or
    ensemble not made again), so that a report rebuilt from the directory never shows a stale
    figure; called wherever those records are written. Returns the names removed."""
    from runfiles.documents import Baseline, RunFacts, Summary  # documents are read here, not where files are

    facts = RunFacts.read(run_dir)
    objective = facts.ranking if facts else OBJECTIVE
    keep = recorded(Summary.read(run_dir, objective), Baseline.read(run_dir, objective))
    removed = [p for p in sorted(run_dir.predictions.glob("*.csv")) if p.stem not in keep]
    for path in removed:
        path.unlink()
    return [p.stem for p in removed]
