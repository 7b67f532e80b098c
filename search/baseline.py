"""The tutorial's two models trained as the tutorial trains them, beside a search, for a like-for-like comparison.

    python -m search.baseline RUN_DIR [--epochs 10]

TensorFlow's "Text classification with an RNN" trains each model for 10 epochs with Adam
at 1e-4 on shuffled batches of 64 reviews, each padded to its longest review (no
truncation, no grouping by length), and reports the last epoch's model. Here both are
trained that way on the run's own train/validation split (the same prepared data as
its trials: the harness's standardization and vocabulary, cut to the tutorial's 1,000
words), validated after every epoch, and their last epoch's model evaluated once on the
test split. Results go to DIR/baseline.json, with their compute (training examples,
wall time), which the report shows beside the search's result.

Before them, in seconds, the linear baseline (`search.linear`: TF-IDF word uni+bigrams with
logistic regression) on the same split; `--linear-only` fits only it, keeping the tutorial's
models that baseline.json holds for the same data. On a run without a test split (--test-fraction 0)
the linear baseline is cross-validated on the run's recorded folds instead, and the tutorial's
models are skipped.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass

import numpy as np

from models import TUTORIAL_BATCH_SIZE, TUTORIAL_EPOCHS, TUTORIAL_LEARNING_RATE
from reports import claims
from runfiles import predictions
from runfiles.cli import ArgumentParser, UsageError, add_fields, fail, given_path
from runfiles.documents import Baseline, BaselineModel, LinearBaseline, RunFacts, cross_validated_text
from runfiles.io import read_rows
from runfiles.layout import NO_TEST_SPLIT, TUTORIAL_PRESETS, RunDir, quantity
from search.console import say_test_claims
from search.data import raw_splits
from search.linear import C_GRID, cross_validate, fit_linear
from search.retrain import Job, keep_predictions, run_jobs
from search.session import Session, follow_up
from search.space import configs_from, tutorial_point

RECORDED_TRAIN = ("epochs", "learning_rate", "batch_size", "max_len", "bucket", "seed", "threads", "lstm")
"""The TrainConfig fields baseline.json records for each model."""


@dataclass(frozen=True)
class BaselineConfig:
    """How the tutorial's models are trained."""

    epochs: int = TUTORIAL_EPOCHS
    """Epochs, as the tutorial trains its models."""
    linear_only: bool = False
    """Fit only the linear baseline (seconds), keeping the tutorial's models already recorded for the same data."""

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs {self.epochs} is invalid: expected an integer >= 1")


def run_baselines(session: Session, config: BaselineConfig) -> Baseline:
    """The linear baseline, then (unless `linear_only`) the tutorial's models; returns what
    baseline.json holds."""
    linear = linear_baseline(session)
    if not len(session.prepared.splits["test"]):
        session.progress.field(
            "baseline", f"the tutorial's models: skipped, {NO_TEST_SPLIT} (they are tested, not cross-validated)"
        )
        return keeping_models(None, session.prepared.fingerprint, linear)
    if not config.linear_only:
        return dataclasses.replace(train_baseline(session, config), linear=linear)
    return keeping_models(Baseline.read(session.run_dir, session.objective), session.prepared.fingerprint, linear)


def keeping_models(kept: Baseline | None, fingerprint: str, linear: LinearBaseline) -> Baseline:
    """What baseline.json holds after `--linear-only`: `linear`, beside the tutorial's models of the
    `kept` baseline.json when they were trained on the data of `fingerprint`; else no models (and
    no examples, wall time or epochs: nothing was trained)."""
    same_data = kept is not None and kept.data_fingerprint == fingerprint
    return dataclasses.replace(kept if same_data else Baseline(data_fingerprint=fingerprint), linear=linear)


def linear_baseline(session: Session) -> LinearBaseline:
    """`search.linear.fit_linear` on the run's own splits as raw text, ranked by the run's objective;
    its test predictions go to DIR/predictions/linear.csv."""
    metric = session.objective.metric
    session.progress.field("linear", f"TF-IDF word uni+bigrams, logistic regression; C from {', '.join(map(str, C_GRID))}")
    splits = raw_splits(session.data_config)
    found, predicted = fit_linear(splits, len(session.prepared.classes), session.objective, session.search.seed)
    if not len(predicted):
        return linear_cross_validated(session, splits, found)
    predictions.write(predictions.path_of(session.run_dir, predictions.LINEAR), splits["test"][1], predicted)
    session.progress.field(
        "linear",
        f"C={found.c:g}: {metric} {found.value:.4f}, test_accuracy {found.test_accuracy:.4f}; "
        f"fitted in {found.fit_s:.1f} s, {found.predict_per_s:,.0f} test reviews/s",
    )
    return found


def linear_cross_validated(session: Session, splits: dict, found: LinearBaseline) -> LinearBaseline:
    """On a run without a test split: `found` (C chosen on validation, as the network's configuration
    was) cross-validated over the run's recorded folds (DIR/cv_folds.csv), its out-of-fold predictions
    in DIR/predictions/cv-linear.csv, paired with the certified configuration's by example."""
    folds = np.array([int(row["fold"]) for row in read_rows(session.run_dir.cv_folds_csv)])
    labels = np.concatenate([splits["train"][1], splits["val"][1]])
    predicted = cross_validate(splits, folds, found.c, session.search.seed)
    predictions.write(predictions.path_of(session.run_dir, predictions.CV_LINEAR), labels, predicted)
    estimate = claims.score(labels, [predicted])
    found.cv_folds, found.cv_accuracy = int(folds.max()) + 1, estimate.value
    found.cv_accuracy_low, found.cv_accuracy_high = estimate.low, estimate.high
    text = cross_validated_text(found.cv_folds, estimate.value, estimate.low, estimate.high)
    session.progress.field("linear", f"C={found.c:g}: {session.objective.metric} {found.value:.4f}; {text} on the run's folds")
    return found


def train_baseline(session: Session, config: BaselineConfig) -> Baseline:
    """Train both presets (see the module's docstring), evaluate each once on the test split;
    returns what baseline.json holds."""
    search, resources = session.search, session.resources
    # --lstm keras holds; otherwise each worker reads "auto" for its device (models.lstm_for)
    base = session.train_base("keras" if search.lstm == "keras" else "auto")
    tutorial_way = {"epochs": config.epochs, "learning_rate": TUTORIAL_LEARNING_RATE, "batch_size": TUTORIAL_BATCH_SIZE}
    tutorial_way |= {"max_len": 0, "bucket": False, "schedule": "constant"}
    classes, metric = len(session.prepared.classes), session.objective.metric
    jobs = [
        Job(point, configs_from(point, classes, base, **tutorial_way)[1], "last", session.objective, preset=preset)
        for preset, point in ((preset, tutorial_point(preset, session.space)) for preset in TUTORIAL_PRESETS)
    ]
    train = {name: getattr(jobs[0].train, name) for name in RECORDED_TRAIN}
    session.progress.field("baseline", f"the tutorial's {len(jobs)} models, {quantity(config.epochs, 'epoch')} each")
    started = time.time()
    results = run_jobs(
        jobs,
        session.prepared,
        resources.cpus_per_trial,
        resources.gpus_per_trial,
        on_done=lambda job, r: session.progress.field(
            "baseline", f"{job.preset}: {metric} {r.value:.4f} after {quantity(config.epochs, 'epoch')}"
        ),
    )
    keep_predictions(session.run_dir, session.prepared, {job.preset: r.test for job, r in zip(jobs, results, strict=True)})
    models = {}
    for job, result in zip(jobs, results, strict=True):
        models[job.preset] = BaselineModel(
            params=job.params,
            train=train,
            value=result.value,
            test_accuracy=result.test_accuracy,
            test_macro_f1=result.test.macro_f1,
            test_examples=len(session.prepared.splits["test"]),
            examples=result.examples,
            examples_per_s=result.mean("examples_per_s"),
            epochs=[
                {k: m.get(k) for k in dict.fromkeys(("epoch", metric, "val_loss", "train_accuracy", "epoch_s"))}
                for m in result.history
            ],
        )
        session.progress.field("baseline", f"{job.preset}: test_accuracy {models[job.preset].test_accuracy:.4f}")
    return Baseline(
        models=models,
        examples=sum(m.examples for m in models.values()),
        data_fingerprint=session.prepared.fingerprint,
        wall_s=time.time() - started,
        epochs=config.epochs,
    )


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run_dir", type=given_path, metavar="RUN_DIR", help="a search's run directory (its data and split are used)"
    )
    add_fields(parser, BaselineConfig, ["epochs", "linear_only"])
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = parser.parse_args(argv)
        config = BaselineConfig(epochs=args.epochs, linear_only=args.linear_only)
        run_dir = RunDir(args.run_dir)
        facts = RunFacts.read(run_dir)
        if facts is None:
            raise UsageError(f"{run_dir.root}: not a run directory (no {run_dir.run_json.name}); start a search first")
        check_recorded_folds(run_dir, facts)
    except (UsageError, ValueError) as error:
        return fail(error)
    command = shlex.join(["python", "-m", "search.baseline", *argv])

    def work(session: Session) -> None:
        if not run_dir.summary_json.is_file():  # written when a search ends; absent while it is in progress
            session.progress.warn(
                f"the search in {run_dir.root} has not finished; the baselines train on its split all the same "
                f"(continue the search with: {run_dir.resume_command})"
            )
        run_baselines(session, config).write(run_dir, session.objective)
        predictions.keep_recorded(run_dir)
        say_test_claims(run_dir, session.objective, session.progress)

    # without a test split the tutorial's models are skipped: the linear baseline alone, in this process
    return follow_up(run_dir, work, command, trains=not (config.linear_only or facts.data.untested))


def check_recorded_folds(run_dir: RunDir, facts: RunFacts) -> None:
    """A run without a test split compares with the linear baseline on its recorded folds: UsageError
    while it has none (it was not certified with --cv K)."""
    if facts.data.untested and not run_dir.cv_folds_csv.is_file():
        raise UsageError(
            f"{run_dir.root}: {NO_TEST_SPLIT}, and no folds to cross-validate on ({run_dir.cv_folds_csv.name}); "
            f"certify it first: python -m search.certify {shlex.quote(str(run_dir.root))} --cv 10"
        )


if __name__ == "__main__":
    sys.exit(main())
