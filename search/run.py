"""Search BiLSTM text classifiers on IMDB: Optuna proposes, Ray Tune schedules, ASHA stops.

    python -m search.run --smoke --data ../shared/datasets/aclImdb_v1_labelled.tar.gz --out runs/smoke
    python -m search.run --gpus 4 --trials 64 --out runs/big

Writes the run directory described in README.md: trial tables, the Optuna study, Tune's
experiment, the exported best model and the HTML report.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from search.data import DataConfig, DataError, Prepared, default_source, prepare, source_fingerprint
from search.space import OBJECTIVE, PARAMS, SPACE, configs_from, narrowed, optuna_space, preset_point, to_json
from search.train import TrainConfig

SMOKE = {"limit": 2000, "test_limit": 2000, "trials": 6, "max_epochs": 2, "fixed": {"max_len": 128}}
"""--smoke: small enough for a 2-core laptop in a few minutes, yet the whole pipeline."""
STUDY_NAME = "search"


class UsageError(ValueError):
    """A command-line value the user can fix; printed as one line, exit 2."""


@dataclass(frozen=True)
class SearchConfig:
    """What is searched, for how long, and on which resources."""

    trials: int = 20
    """Trials to run, the tutorial's two models included."""
    max_epochs: int = 10
    """Epochs a trial trains if ASHA lets it run to the end."""
    grace_period: int = 1
    """Epochs every trial trains before ASHA may stop it."""
    time_budget_min: float | None = None
    """Stop starting and running trials after this many minutes; None = no limit."""
    gpus: float = 0
    """GPUs used in total; 0 trains on CPUs."""
    gpus_per_trial: float = 1
    """Each trial's share of a GPU (a fraction packs several trials on one GPU)."""
    cpus: int | None = None
    """CPUs used in total; None = all of this machine's or the cluster's."""
    cpus_per_trial: int | None = None
    """CPUs (and TensorFlow threads) per trial; None = 1 on CPUs, an even share with GPUs."""
    address: str | None = None
    """Address of a running Ray cluster; None starts Ray on this machine."""
    seed: int = 0
    """Seeds Optuna's sampler, the data split and every trial."""
    keras_lstm: bool = False
    """Train with Keras's LSTM layers on CPUs too (default: the fused kernel there, cuDNN on GPUs)."""
    fixed: dict = dataclasses.field(default_factory=dict)
    """Hyperparameters pinned to one value instead of searched."""

    def __post_init__(self) -> None:
        for name, low in (("trials", 1), ("max_epochs", 1), ("grace_period", 1)):
            if getattr(self, name) < low:
                raise UsageError(f"--{name.replace('_', '-')} {getattr(self, name)} is invalid: expected an integer >= {low}")
        if self.grace_period > self.max_epochs:
            raise UsageError(f"--grace-period {self.grace_period} is invalid: expected at most --max-epochs ({self.max_epochs})")
        if self.time_budget_min is not None and self.time_budget_min <= 0:
            raise UsageError(f"--time-budget {self.time_budget_min} is invalid: expected minutes > 0")
        if self.gpus < 0:
            raise UsageError(f"--gpus {self.gpus} is invalid: expected 0 or more")
        if not 0 < self.gpus_per_trial <= max(1.0, self.gpus):
            raise UsageError(f"--gpus-per-trial {self.gpus_per_trial} is invalid: expected a share in (0, {max(1.0, self.gpus):g}]")
        for name in ("cpus", "cpus_per_trial"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} {value} is invalid: expected an integer >= 1")

    @property
    def time_budget_s(self) -> float | None:
        return self.time_budget_min * 60 if self.time_budget_min else None


@dataclass(frozen=True)
class Resources:
    """How trials are packed onto what Ray has."""

    cpus: int
    gpus: float
    cpus_per_trial: int
    gpus_per_trial: float
    concurrency: int
    address: str | None


def plan_resources(config: SearchConfig, available: dict) -> Resources:
    """Per-trial shares and concurrency; too many GPUs or CPUs asked for is a UsageError."""
    have_gpus, have_cpus = available.get("GPU", 0), int(available.get("CPU", 0))
    where = f"the cluster at {config.address}" if config.address else "this machine"
    if config.gpus > have_gpus:
        raise UsageError(f"--gpus {config.gpus:g}: {where} has {have_gpus:g} GPUs; ask for at most {have_gpus:g}")
    cpus = config.cpus or have_cpus
    if cpus > have_cpus:
        raise UsageError(f"--cpus {cpus}: {where} has {have_cpus} CPUs; ask for at most {have_cpus}")
    if config.gpus:
        concurrency = max(1, int(config.gpus / config.gpus_per_trial + 1e-9))
        per_trial = config.cpus_per_trial or max(1, cpus // concurrency)
        gpus_per_trial = config.gpus_per_trial
    else:
        per_trial = config.cpus_per_trial or 1
        concurrency, gpus_per_trial = max(1, cpus // per_trial), 0
    if per_trial > cpus:
        raise UsageError(f"--cpus-per-trial {per_trial}: more than the {cpus} CPUs in use")
    return Resources(cpus, config.gpus, per_trial, gpus_per_trial, min(concurrency, config.trials), config.address)


# ---------------------------------------------------------------- command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m search.run",
        description="Search single and stacked BiLSTMs on IMDB with Ray Tune + Optuna.",
        epilog="Searched: " + "; ".join(f"{p.name} {p.describe()} ({p.help})" for p in SPACE),
    )
    defaults = SearchConfig()
    parser.add_argument("--gpus", type=float, default=0, help="GPUs to use in total; 0 trains on CPUs (default: 0)")
    parser.add_argument("--gpus-per-trial", type=float, default=1, help="each trial's share of a GPU, e.g. 0.5 (default: 1)")
    parser.add_argument("--cpus", type=int, default=None, help="CPUs to use in total (default: all)")
    parser.add_argument("--cpus-per-trial", type=int, default=None, help="CPUs and TensorFlow threads per trial (default: 1 on CPUs, an even share with GPUs)")
    parser.add_argument("--trials", type=int, default=None, help=f"trials to run, the tutorial's two included (default: {defaults.trials}; --smoke: {SMOKE['trials']})")
    parser.add_argument("--max-epochs", type=int, default=None, help=f"epochs of a trial that ASHA does not stop (default: {defaults.max_epochs}; --smoke: {SMOKE['max_epochs']})")
    parser.add_argument("--grace-period", type=int, default=1, help="epochs before ASHA may stop a trial (default: 1)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="MINUTES", help="stop the search after this many minutes (default: none)")
    parser.add_argument("--data", default=default_source(), help="'tfds', an aclImdb folder or .tar.gz (default: $IMDB_DATA or 'tfds')")
    parser.add_argument("--limit", type=int, default=None, help=f"use only N training reviews (default: all; --smoke: {SMOKE['limit']})")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<date-time>)")
    parser.add_argument("--address", default=None, help="join the Ray cluster at this address instead of starting Ray here")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sampler, the split and the trials (default: 0)")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE", help="pin a searched hyperparameter to one value, e.g. --fix max_len=256 (repeatable)")
    parser.add_argument("--keras-lstm", action="store_true", help="train with Keras's LSTM layers instead of the fused CPU kernel")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    parser.add_argument("--smoke", action="store_true", help=f"a few-minute run of the whole pipeline on a subset: {SMOKE['limit']} reviews, {SMOKE['trials']} trials, {SMOKE['max_epochs']} epochs, max_len 128")
    return parser.parse_args(argv)


def parse_fixed(items: list[str]) -> dict:
    """--fix NAME=VALUE pairs, each value converted to its parameter's type."""
    fixed = {}
    for item in items:
        name, _, text = item.partition("=")
        param = PARAMS.get(name)
        if param is None or not text:
            raise UsageError(f"--fix {item}: expected NAME=VALUE with NAME one of {', '.join(PARAMS)}")
        kind = type(param.choices[0]) if param.kind == "categorical" else {"int": int, "float": float}[param.kind]
        try:
            fixed[name] = kind(text)
        except ValueError:
            raise UsageError(f"--fix {item}: {name} takes a {kind.__name__} value") from None
    return fixed


def configs_from_args(args: argparse.Namespace) -> tuple[SearchConfig, DataConfig, Path]:
    smoke = SMOKE if args.smoke else {}
    search = SearchConfig(
        trials=_given(args.trials, smoke.get("trials", SearchConfig.trials)),
        max_epochs=_given(args.max_epochs, smoke.get("max_epochs", SearchConfig.max_epochs)),
        grace_period=args.grace_period,
        time_budget_min=args.time_budget,
        gpus=args.gpus,
        gpus_per_trial=args.gpus_per_trial,
        cpus=args.cpus,
        cpus_per_trial=args.cpus_per_trial,
        address=args.address,
        seed=args.seed,
        keras_lstm=args.keras_lstm,
        fixed=dict(smoke.get("fixed", {})) | parse_fixed(args.fix),
    )
    space = narrowed(SPACE, search.fixed)
    for preset in ("tutorial-single", "tutorial-stacked"):  # pinned values must make valid configs
        TrainConfig(**configs_from(preset_point(preset, space))[1])
    data = DataConfig(
        source=args.data,
        limit=_given(args.limit, smoke.get("limit")),
        test_limit=smoke.get("test_limit"),
        max_vocab=int(max(p.high or max(p.choices) for p in space if p.name == "vocab_size")),
        seed=args.seed,
    )
    out = args.out or Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return search, data, out


def _given(value, default):
    return default if value is None else value


def check_out(out: Path, resume: bool) -> None:
    tune_dir = out / "tune"
    if resume and not tune_dir.is_dir():
        raise UsageError(f"--resume --out {out}: no interrupted run there (no {tune_dir}); start one without --resume")
    if not resume and out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out}: holds an earlier run; pass --resume to continue it, or choose an empty folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file; choose a folder")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    args = parse_args(argv)
    try:
        search, data_config, out = configs_from_args(args)
        check_out(out, args.resume)
        source_fingerprint(data_config.source)  # a missing source fails here, before Ray starts
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run(search, data_config, out, resume=args.resume, command=shlex.join(["python", "-m", "search.run", *argv]))


# ---------------------------------------------------------------- the run


def start_ray(config: SearchConfig) -> bool:
    """Connect to a cluster or start Ray here; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    env = {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}}
    if config.address:
        ray.init(address=config.address, runtime_env=env, log_to_driver=False)
    else:
        ray.init(num_cpus=config.cpus or os.cpu_count(), include_dashboard=False, runtime_env=env, log_to_driver=False)
    return True


def run(search: SearchConfig, data_config: DataConfig, out: Path, resume: bool, command: str) -> int:
    import ray

    started = time.time()
    try:
        started_ray = start_ray(search)
    except Exception as error:  # a wrong --address, or a cluster that refuses us
        print(f"error: --address {search.address}: could not connect to Ray ({str(error).splitlines()[0]})", file=sys.stderr)
        return 2
    try:
        resources = plan_resources(search, ray.cluster_resources())
        prepared = prepare(data_config)
    except (UsageError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        if started_ray:
            ray.shutdown()
        return 2
    try:
        return _search(search, data_config, prepared, resources, out, resume, command, started)
    finally:
        if started_ray:
            ray.shutdown()


def _search(search, data_config, prepared: Prepared, resources: Resources, out: Path, resume, command, started) -> int:
    from ray import tune

    from search.export import export_best, library_versions
    from search.atomic import write_json
    from search.rundir import TrialLog
    from search.trainable import MODEL_FILE, bilstm

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    space = narrowed(SPACE, search.fixed)
    train_defaults = {"epochs": search.max_epochs, "seed": search.seed, "threads": resources.cpus_per_trial}
    if search.keras_lstm:
        train_defaults["fused_lstm"] = False
    run_facts = {
        "command": command,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "configs": {
            "data": dataclasses.asdict(data_config),
            "search": dataclasses.asdict(search),
            "train": train_defaults,
        },
        "data": prepared.facts,
        "space": to_json(space),
        "objective": dataclasses.asdict(OBJECTIVE),
        "resources": dataclasses.asdict(resources),
        "versions": library_versions(),
    }
    if resume and (out / "run.json").exists():
        previous = json.loads((out / "run.json").read_text())
        run_facts["resumed"] = previous.get("resumed", []) + [run_facts["started_at"]]
        run_facts["started_at"] = previous["started_at"]
    write_json(out / "run.json", run_facts)

    log = TrialLog(out, space, search.max_epochs, resources.cpus_per_trial, search.trials, search.time_budget_s)
    fn = tune.with_resources(
        tune.with_parameters(bilstm, data=prepared.for_trials(), train_defaults=train_defaults),
        {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
    )
    if resume:
        tuner = tune.Tuner.restore(str(out / "tune"), trainable=fn, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(fn, tune_config=_tune_config(search, space, resources, out), run_config=_run_config(out, log))
    print(
        f"[search] {search.trials} trials, up to {search.max_epochs} epochs each, {resources.concurrency} at a time "
        f"({resources.cpus_per_trial} CPU" + (f", {resources.gpus_per_trial:g} GPU" if resources.gpus_per_trial else "")
        + f" per trial) on {prepared.facts['sizes']['train']} train / {prepared.facts['sizes']['val']} validation reviews; "
        f"writing {out}",
        flush=True,
    )
    fit_started = time.time()
    results = tuner.fit()
    log.setup()  # a resumed Tuner reports to its own unpickled copy of the log: read the files it wrote
    if search.time_budget_s and time.time() - fit_started >= search.time_budget_s:
        log.stop_for_budget()
    if log.interrupted(search.trials):
        print(f"[search] interrupted; continue with: python -m search.run --resume --out {out}", file=sys.stderr, flush=True)
        _build_report(out)
        return 130

    scored = [r for r in results if r.metrics and OBJECTIVE.metric in (r.metrics or {})]
    if not scored:
        print(f"error: no trial finished an epoch; see the errors under {out / 'tune'}", file=sys.stderr)
        return 1
    best = results.get_best_result(OBJECTIVE.metric, OBJECTIVE.mode, scope="all")
    checkpoint = best.get_best_checkpoint(OBJECTIVE.metric, OBJECTIVE.mode)
    best_epoch = max(best.metrics_dataframe.to_dict("records"), key=lambda m: m[OBJECTIVE.metric])
    params = {p.name: best.config[p.name] for p in space}
    with checkpoint.as_directory() as folder:
        card = export_best(
            Path(folder) / MODEL_FILE,
            params,
            prepared,
            out / "best_model",
            {"trial_id": best.metrics["trial_id"], "val_accuracy": best_epoch[OBJECTIVE.metric], "epoch": best_epoch["epoch"],
             "examples_per_s": best_epoch["examples_per_s"], "tokens_per_s": best_epoch["tokens_per_s"]},
        )
    tutorial = {r["preset"]: {"trial_id": r["trial_id"], "val_accuracy": r.get("val_accuracy")} for r in log.trials.values() if r["preset"]}
    summary = {
        "best": {
            "trial_id": card["trial_id"],
            "params": params,
            "preset": next((p for p, t in tutorial.items() if t["trial_id"] == card["trial_id"]), ""),
            "val_accuracy": card["val_accuracy"],
            "test_accuracy": card["test_accuracy"],
            "test_examples": card["test_examples"],
            "best_epoch": card["epoch"],
            "examples_per_s": card["examples_per_s"],
            "tokens_per_s": card["tokens_per_s"],
        },
        "tutorial": tutorial,
        "counts": log.counts(),
        "wall_s": time.time() - started,
        "budget": {"trials": search.trials, "max_epochs": search.max_epochs, "time_budget_min": search.time_budget_min},
        "finished": True,
    }
    write_json(out / "summary.json", summary)
    print(
        f"[search] best: trial {card['trial_id']} val_accuracy {card['val_accuracy']:.4f}, "
        f"test_accuracy {card['test_accuracy']:.4f} on {card['test_examples']} test reviews; "
        f"model in {out / 'best_model'}; {summary['wall_s'] / 60:.1f} min",
        flush=True,
    )
    _build_report(out)
    return 0


def _tune_config(search: SearchConfig, space, resources: Resources, out: Path):
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(
        space=optuna_space(space),
        metric=OBJECTIVE.metric,
        mode=OBJECTIVE.mode,
        points_to_evaluate=[preset_point(p, space) for p in ("tutorial-single", "tutorial-stacked")],
        sampler=optuna.samplers.TPESampler(seed=search.seed),
        study_name=STUDY_NAME,
        storage=optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}"),
    )
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        metric=OBJECTIVE.metric,
        mode=OBJECTIVE.mode,
        max_t=search.max_epochs,
        grace_period=search.grace_period,
        reduction_factor=3,
    )
    return tune.TuneConfig(
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=search.trials,
        max_concurrent_trials=resources.concurrency,
        time_budget_s=search.time_budget_s,
        trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        reuse_actors=True,  # a worker keeps TensorFlow loaded from one trial to the next
    )


def _run_config(out: Path, log):
    from ray import tune

    return tune.RunConfig(
        name="tune",
        storage_path=str(out),
        callbacks=[log],
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=1, checkpoint_score_attribute=OBJECTIVE.metric, checkpoint_score_order=OBJECTIVE.mode
        ),
        failure_config=tune.FailureConfig(max_failures=0),
        verbose=1,
    )


def _build_report(out: Path) -> None:
    try:
        import reports

        index = reports.build(out)
    except Exception as error:  # the run's results stand even if its report cannot be drawn
        print(f"warning: the report could not be built ({error}); retry with: python -m reports {out}", file=sys.stderr)
        return
    print(f"[search] report: {index}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
