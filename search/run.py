"""Search BiLSTM text classifiers on IMDB: Optuna proposes, Ray Tune schedules, ASHA stops.

    python -m search.run --smoke --data ../shared/datasets/aclImdb_v1_labelled.tar.gz --out runs/smoke
    python -m search.run --gpus 4 --trials 64 --out runs/big
    python -m search.run --resume --out runs/big [--trials 80]

Writes the run directory described in docs/run-directory.md: trial tables, the Optuna study, Tune's
experiment, the exported best model and the HTML report. The run goes in phases: its
facts (run.json), the tuner, the fit, the outcome (which trials ended how, the best
one), the export of the best trial, the summary and the report.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from models.config import lstm_for
from runfiles.cli import INTERRUPTED, UsageError, fail, recorded_config, sigterm_as_ctrl_c
from runfiles.documents import DataFacts, LstmFacts, RunFacts, SessionRecord
from runfiles.layout import BENCHMARK_FILE, NO_TEST_SPLIT, SHOWN_IN_TERMINAL, STUDY_NAME, TUTORIAL_PRESETS, RunDir
from runfiles.lock import holding, refuse_if_held
from runfiles.study import damage
from runfiles.trials import examples_used, lost_epochs, searched_s
from search import warm
from search.cluster import check_address, storage_path, upload, wait_for_gpus
from search.config import (
    CERTIFY_COUNT_FLAGS,
    WARM_START_TOP,
    CertifyConfig,
    SearchConfig,
    check_count,
    check_embeddings,
    check_folds,
    configs_from_args,
    local_cpus,
    parse_args,
    plan_resources,
    planned,
    recorded_configs,
    resumed_configs,
    run_dir_of,
)
from search.console import Progress, keep_log, quiet_libraries, say_test_claims
from search.data import DataConfig, DataError, carves_test, check_source, data_fingerprint, prepare, source_fingerprint
from search.data.reviews import NO_TEST
from search.export import library_versions
from search.mlflow_tracking import check_tracking
from search.session import (
    OWN_VECTORS,
    Session,
    build_report,
    check_same_data,
    check_same_vectors,
    machine_failed,
    ray_failure,
    ray_session,
    shared_train_fields,
)
from search.space import preset_point, start_point


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    with sigterm_as_ctrl_c():
        return _main(argv)


def _main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
        run_dir = RunDir(run_dir_of(args))
        check_folder("--out", run_dir.root)
        refuse_if_held(run_dir)  # first without writing anything, then again under the lock
        check_out(run_dir, args.resume)
    except UsageError as error:
        return fail(error)
    command = shlex.join(["python", "-m", "search.run", *argv])
    existed = run_dir.root.exists()
    try:
        with holding(run_dir, command):  # one driver per run directory, checked again under the lock
            try:
                return session_of(args, run_dir, command)
            finally:
                tidy(run_dir, made=not existed)
    except UsageError as error:
        return fail(error)
    except OSError as error:
        return machine_failed(error, run_dir)


def certify_of(args) -> CertifyConfig | None:
    """What `--certify` and the flags that shape it ask for; UsageError for a flag without it."""
    if args.ensemble and not args.certify:
        raise UsageError("--ensemble exports an ensemble of the certified refits: add --certify")
    if args.ensemble and "max_latency_ms" in vars(args):
        raise UsageError("--ensemble multiplies the latency by the seeds it averages: drop it under --max-latency-ms")
    if args.no_ablation and not args.certify:
        raise UsageError("--no-ablation skips a part of certification: add --certify")
    if "cv" in vars(args) and not args.certify:
        raise UsageError(f"--cv {args.cv} cross-validates in certification: add --certify")
    counts = {name: vars(args)[name] for name in CERTIFY_COUNT_FLAGS if name in vars(args)}
    for name, value in counts.items():
        if not args.certify:
            raise UsageError(f"{CERTIFY_COUNT_FLAGS[name]} {value} shapes certification: add --certify")
        check_count(CERTIFY_COUNT_FLAGS[name], value)
    if not args.certify:
        return None
    return CertifyConfig(ensemble=args.ensemble, ablation=not args.no_ablation, cv=vars(args).get("cv", 0), **counts)


def resumed_certify(args, recorded: RunFacts) -> CertifyConfig | None:
    """The certification a resumed run keeps (run.json's configs record it): a bare --resume
    certifies as the run started; --certify adds certification to a run that had none. A run
    recorded before certification was recorded takes the flags given now.

    Raises UsageError naming each flag given now that differs from the run's value."""
    wanted = certify_of(args)
    if "certify" not in recorded.configs or recorded.configs["certify"] is None:
        return wanted
    kept = recorded_config(CertifyConfig, recorded.configs["certify"], "run.json's configs.certify")
    if wanted is None:
        return kept
    counts = {name: flag for name, flag in {"cv": "--cv", **CERTIFY_COUNT_FLAGS}.items() if name in vars(args)}
    changed = [
        f"{flag} {vars(args)[name]} (the run's: {getattr(kept, name)})"
        for name, flag in counts.items()
        if getattr(wanted, name) != getattr(kept, name)
    ]
    switches = {"--ensemble": args.ensemble and not kept.ensemble, "--no-ablation": args.no_ablation and kept.ablation}
    changed += [f"{flag} (the run started without it)" for flag, differs in switches.items() if differs]
    if changed:
        raise UsageError(
            f"--resume: {', '.join(changed)} cannot change on resume (the run certifies as it started); "
            "drop them, or certify again with python -m search.certify"
        )
    return kept


def check_budget_left(args, run_dir: RunDir) -> None:
    """UsageError for --budget-examples on --resume not above the training examples the run has
    used already (epochs.csv): that budget is spent before the continued search starts."""
    budget, used = vars(args).get("budget_examples"), examples_used(run_dir)
    if budget is not None and budget <= used:
        raise UsageError(
            f"--resume: --budget-examples {budget:,} is spent already (the run has trained on {used:,} examples); "
            f"give more than {used:,}, or start a new run with another --out"
        )


def resumed_benchmark(args, recorded: RunFacts | None) -> bool:
    """Whether the serving benchmark runs: not with --no-benchmark, given now or when the run started."""
    return not args.no_benchmark and (recorded is None or recorded.configs.get("benchmark", True))


def check_no_test(data_config: DataConfig, certify: CertifyConfig | None) -> None:
    """With --test-fraction 0 on one table file (no test split) the result is the cross-validated
    estimate: UsageError unless --certify --cv K asks for it."""
    if data_config.test_fraction == NO_TEST and carves_test(data_config.source) and not (certify and certify.cv):
        raise UsageError(
            "--test-fraction 0 leaves no test split: the result is then the cross-validated estimate; "
            "add --certify --cv K (K = 10 in Kim 2014 and Wang & Manning 2012)"
        )


def check_data(args, data_config: DataConfig, recorded: RunFacts | None) -> None:
    """The data readable, and on --resume the run's own (and its vectors file), before Ray starts:
    DataError or UsageError naming what would work."""
    check_run_data(data_config, args.resume and "source" not in vars(args))
    if not args.resume:
        source_fingerprint(data_config.source)
        return
    # the vectors file first: one the run trained with and that moved is named so
    where = f"--data {data_config.source}" if "source" in vars(args) else f"the run's data, {data_config.source},"
    advice = "give --data the path of the run's own data, or start a new run with another --out"
    check_same_vectors(data_config, recorded, "--resume", f"{OWN_VECTORS}, or start a new run with another --out")
    check_same_data(data_config, recorded, f"--resume: {where}", advice)


def session_of(args, run_dir: RunDir, command: str) -> int:
    """Check the options against the run directory and the data, then run; the exit code."""
    try:
        check_out(run_dir, args.resume)
        recorded = RunFacts.read(run_dir) if args.resume else None
        if recorded:
            search, data_config = resumed_configs(args, recorded)
            certify = resumed_certify(args, recorded)
            check_budget_left(args, run_dir)
        else:
            search, data_config = configs_from_args(args)
            certify = certify_of(args)
        check_storage(search.storage)
        search = replace(search, mlflow=check_tracking(search.mlflow))  # a local store by its absolute path
        check_local_resources(search)
        check_address(search.address)
        check_data(args, data_config, recorded)
        check_no_test(data_config, certify)
        check_embeddings(search, data_config)
        warm_runs = warm_runs_of(args, search, data_config)
    except (UsageError, DataError, ValueError) as error:
        return fail(error)
    progress = Progress()
    with quiet_libraries(args.verbose, progress, run_dir.session_log) as log:
        try:
            code = run(
                search,
                data_config,
                run_dir,
                args.resume,
                command,
                progress,
                args.verbose,
                certify,
                resumed_benchmark(args, recorded),
                warm_runs=warm_runs,
                warm_top=getattr(args, "warm_start_top", WARM_START_TOP),
            )
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM before Tune took over its handling (Ray or TensorFlow starting)
            code = interrupted(run_dir, progress)
        except Exception as error:  # a full or read-only disk, perhaps wrapped by Ray or Tune
            code = machine_failed(error, run_dir)
        finally:
            keep_log(log, run_dir)
    return code


def warm_runs_of(args, search: SearchConfig, data_config: DataConfig) -> list[warm.WarmRun]:
    """The earlier runs --warm-start names, checked (`search.warm.check_runs`); [] without it.
    Raises UsageError for --warm-start on --resume (the run's study exists already), or
    --warm-start-top without --warm-start."""
    given = vars(args)
    if "warm_start" not in given:
        if "warm_start_top" in given:
            raise UsageError(f"{warm.TOP_FLAG} {args.warm_start_top}: it counts what {warm.FLAG} RUN queues; add {warm.FLAG}")
        return []
    if args.resume:
        raise UsageError(f"{warm.FLAG}: a warm start begins a new run's study; drop it on --resume")
    top = given.get("warm_start_top", WARM_START_TOP)
    return warm.check_runs(args.warm_start, data_fingerprint(data_config), search.ranking, top)


def check_run_data(data_config: DataConfig, recorded: bool) -> None:
    """A missing package or source fails here, before Ray starts; for the data a resumed run
    recorded, with what to do (give --data where it lies now)."""
    try:
        check_source(data_config.source, data_config.read_options)
    except DataError as error:
        if not recorded:
            raise
        raise UsageError(
            f"--resume: the run's data, {data_config.source}, cannot be read here ({error}); "
            "give --data the path where it lies now"
        ) from None


def tidy(run_dir: RunDir, made: bool) -> None:
    """When the run directory holds nothing but the lock's files (nothing was written), remove them,
    and the directory too if this command `made` it."""
    with contextlib.suppress(OSError):
        if all(run_dir.bookkeeping(path) for path in run_dir.root.iterdir()):
            for path in run_dir.root.iterdir():
                path.unlink()
            if made:
                run_dir.root.rmdir()


def interrupted(run_dir: RunDir, progress: Progress) -> int:
    """Ctrl-C (or SIGTERM) outside Tune's loop: say how to go on (or that nothing started), exit 130."""
    if run_dir.run_json.is_file():
        progress.say(f"interrupted; continue with: {run_dir.resume_command}")
    else:
        progress.say("interrupted before the search started; nothing was written")
    return INTERRUPTED


def check_out(run_dir: RunDir, resume: bool) -> None:
    """--out must be empty for a new run and hold a run for --resume (whose study.db and, once it
    finished, epochs.csv are whole); UsageError otherwise."""
    out = run_dir.root
    if resume and not (run_dir.run_json.is_file() and run_dir.study_db.is_file()):
        raise UsageError(f"--resume --out {out}: no run there (no run.json and study.db); start one without --resume")
    problem = damage(run_dir.study_db) if resume else ""  # a driver stopped early may leave it empty: Optuna fills it
    if problem:  # the run's record of its trials: a resume cannot go on without it
        raise UsageError(
            f"--resume --out {out}: {run_dir.study_db} {problem}; put back a copy of it, or start a new run with another --out"
        )
    lost = lost_epochs(run_dir) if resume else None  # a resume rebuilds trials.csv from it, not it
    if lost:
        raise UsageError(f"--resume --out {out}: {lost}")
    if not resume and run_dir.run_json.is_file():
        raise UsageError(f"--out {out}: holds an earlier run; pass --resume to continue it, or choose an empty folder")
    others = sorted(p.name for p in out.iterdir() if not run_dir.bookkeeping(p)) if out.exists() else []
    if not resume and others:
        raise UsageError(f"--out {out}: holds other files ({', '.join(others[:3])}); choose an empty or new folder")


def check_folder(flag: str, path: Path) -> None:
    """UsageError unless `path` is a folder, or could be made one (no file on the way), that this
    process can write into (not on a read-only file system)."""
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise UsageError(f"{flag} {path}: {place} is a file; choose a folder")
            if not os.access(place, os.W_OK):
                raise UsageError(f"{flag} {path}: {place} cannot be written (read-only); choose a folder you can write to")
            return


def check_storage(storage: str | None) -> None:
    """A local --storage (a path or file:// URI) must be a folder or makeable; URIs are pyarrow's to check."""
    if storage and ("://" not in storage or storage.startswith("file://")):
        check_folder("--storage", Path(storage.removeprefix("file://")).expanduser())


def check_local_resources(search: SearchConfig) -> None:
    """On this machine, more CPUs than it has is a mistake (Ray would believe the number)."""
    if search.address is None and search.cpus is not None and search.cpus > local_cpus():
        raise UsageError(f"--cpus {search.cpus}: this machine has {local_cpus()} CPUs; ask for at most {local_cpus()}")


# ---------------------------------------------------------------- the run


def run(
    search: SearchConfig,
    data_config: DataConfig,
    run_dir: RunDir,
    resume: bool,
    command: str,
    progress: Progress,
    verbose: bool = False,
    certify: CertifyConfig | None = None,
    benchmark: bool = True,
    warm_runs: list[warm.WarmRun] = (),
    warm_top: int = WARM_START_TOP,
) -> int:
    """Run (or continue) a search in run_dir, learning from `warm_runs` (search.warm); returns the
    exit code (0, 1, 2 or 130)."""
    import ray  # started by ray_session

    started = time.time()
    try:
        prepared = prepare(data_config)  # needs no Ray: whatever is wrong with the data is said before Ray starts
        check_folds(certify.cv if certify else 0, prepared.facts.class_counts)
    except (DataError, UsageError) as error:
        return fail(error)
    with ray_session(search, verbose) as failure:
        if failure:
            return fail(ray_failure(search, failure))
        try:
            available = wait_for_gpus(search.gpus, search.resource_wait_min * 60, progress) if search.address else None
            resources = plan_resources(search, available or ray.cluster_resources())
        except UsageError as error:
            return fail(error)
        search, plan = planned(search, len(prepared.splits["train"]))
        session = Session(
            run_dir, search, data_config, prepared, resources, command, resume, started, progress, verbose, certify, benchmark
        )
        session.warm_runs, session.warm_top = tuple(warm_runs), warm_top
        session.fidelity = asdict(plan) if plan else None  # a resumed run keeps the plan run.json records
        try:
            return phases(session)
        except UsageError as error:
            return fail(error)


def phases(session: Session) -> int:
    """facts → tuner → fit → outcome → export → summary → serving benchmark, then the report (and MLflow)."""
    from search import outcome, tuner  # Ray Tune and Optuna load once a search runs, not on --help

    run_dir, progress = session.run_dir, session.progress
    run_dir.root.mkdir(parents=True, exist_ok=True)
    lstm = tuner.choose_lstm(session.search, session.resources, progress)
    if session.warm_runs:
        session.warm_plan = warm.plan(list(session.warm_runs), session.space, session.warm_top, session.search.max_latency_ms)
    session.facts = write_facts(session, lstm)
    built = tuner.build(session)
    header(session, lstm)
    if built.runnable:
        built.fit(progress)
    result = outcome.settle(session, built)
    if result.code == 0:
        summary = outcome.export_and_summarize(session, built, result, export=not session.certify)
        if session.certify and summary.certification is None:  # certified already when the best is unchanged
            certified(session, session.certify)
        elif summary.certification is not None:  # what the earlier certification claims, said again
            say_test_claims(run_dir, session.objective, progress)
        if measures_serving(session):
            served(session)
    elif result.code == 1:  # ended, with no trial to export: the run is finished all the same
        outcome.summarize(session, built)
    build_report(run_dir, progress)
    if session.search.mlflow:
        tracked(session)
    upload(run_dir, session.search.storage)
    return result.code


def tracked(session: Session) -> None:
    """The run's outcome to MLflow (search.mlflow_tracking); a failure is reported, the run stands."""
    from search.mlflow_tracking import log_outcome, viewer

    try:
        run_id = log_outcome(session.search.mlflow, session.run_dir)
    except Exception as error:
        session.progress.warn(f"--mlflow {session.search.mlflow}: the outcome was not logged ({type(error).__name__}: {error})")
        return
    view = viewer(session.search.mlflow)
    session.progress.field(
        "mlflow",
        f"{session.search.mlflow}: experiment {session.run_dir.root.resolve()}, outcome run {run_id}"
        + (f"; view: {view}" if view else ""),
    )


def certified(session: Session, config: CertifyConfig) -> None:
    """Certify the search's result over seeds; the export becomes the configuration best on average."""
    from search import certify  # Ray and Keras load once a search runs, not on --help

    certify.record(session.run_dir, certify.certify(session, config), session.objective)
    session.progress.field("model", f"{session.run_dir.best_model} (model.keras takes raw text; saved_model/ for serving)")
    say_test_claims(session.run_dir, session.objective, session.progress)


def measures_serving(session: Session) -> bool:
    """Whether the session benchmarks the export's serving: unless --no-benchmark (given now or
    when the run started), or the export of an earlier session stands with its benchmark.json."""
    measured = (session.run_dir.best_model / BENCHMARK_FILE).is_file()
    return session.benchmark and not (session.exported_before and measured)


def served(session: Session) -> None:
    """The serving benchmark of the export (search.serving); a failure is reported, the export stands."""
    from search import serving
    from search.data import raw_splits

    progress = session.progress
    if not len(session.prepared.splits["test"]):
        progress.field("serving", f"{NO_TEST_SPLIT}: not measured (the benchmark times the run's test texts)")
        return
    try:
        texts = raw_splits(session.data_config)["test"][0]
        result = serving.benchmark_run(session.run_dir, serving.ServingConfig(threads=local_cpus()), texts)
    except Exception as error:
        again = f"python -m search.serving {shlex.quote(str(session.run_dir.root))}"
        progress.warn(f"the serving benchmark failed ({type(error).__name__}: {error}); retry with: {again}")
        return
    serving.print_benchmark(result, progress.say)


def header(session: Session, lstm: LstmFacts) -> None:
    """What is searched, on what, with what, and where it is written."""
    search, resources, progress = session.search, session.resources, session.progress
    pinned = [p for p in session.space if p.pinned]
    budgets = [
        f"{search.time_budget_min:g} min" if search.time_budget_min else "",
        f"{search.budget_examples:,} training examples" if search.budget_examples else "",
    ]
    gpus = f"{resources.gpus_per_trial:g} GPU and " if resources.gpus_per_trial else ""
    implementation = lstm_for(lstm.trials, on_gpu=resources.gpus_per_trial > 0)
    lstm_text = "the fused kernel" if implementation == "fused" else "Keras's layers (cuDNN)" if gpus else "Keras's layers"
    facts = session.prepared.facts
    progress.field("data", _data_text(session.data_config.source, facts))
    if facts.embeddings:
        progress.field("vectors", facts.embeddings.text())
    if facts.class_text():
        progress.field("classes", facts.class_text(SHOWN_IN_TERMINAL))
    progress.field(
        "space",
        f"{len(session.space)} hyperparameters"
        + (f", {len(pinned)} pinned ({', '.join(f'{p.name}={p.choices[0]}' for p in pinned)})" if pinned else ""),
    )
    progress.field(
        "search",
        f"{search.trials} trial{'s' * (search.trials > 1)} of up to {search.max_epochs} epoch{'s' * (search.max_epochs > 1)}, "
        f"ASHA after {search.grace_period}, ranked by {search.objective}; "
        f"budget: {' and '.join(b for b in budgets if b) or 'none'}"
        + (f"; networks over {search.max_latency_ms:g} ms per review infeasible" if search.max_latency_ms else ""),
    )
    fidelity = session.facts.fidelity if session.facts else None
    if fidelity:
        progress.field("fidelity", f"{fidelity['max_epochs']} epochs at most, planned from the budget: {fidelity['rule']}")
    progress.field(
        "resources",
        f"{resources.concurrency} trial{'s' * (resources.concurrency > 1)} at once, "
        f"{gpus}{resources.cpus_per_trial} CPU each; LSTM: {lstm_text}",
    )
    if session.facts and session.facts.warm_start:
        progress.field("warm start", warm.origins_text(session.facts.warm_start))
    memory = session.facts.memory if session.facts else None
    if memory and memory.text():
        progress.field("memory", memory.text())
    resumed = session.facts.resumed_text() if session.resume and session.facts else ""
    progress.field("run", f"{session.run_dir.root}" + (f" ({resumed})" if resumed else ""))
    tune_dir = storage_path(session.run_dir, search.storage) + "/" + session.run_dir.tune.name
    tools = f"tensorboard --logdir {shlex.quote(tune_dir)}  ·  optuna-dashboard {shlex.quote(session.run_dir.study_url)}"
    progress.field("tools", tools)


def _data_text(source: str, facts: DataFacts) -> str:
    """The data line: split sizes, how the test split was made when it was carved, and what reading
    skipped, repaired or found (`DataFacts.data_notes`) when it did."""
    sizes, carved = facts.sizes, facts.test_split
    return (
        f"{source}: {sizes['train']:,} train / {sizes['val']:,} validation / {sizes['test']:,} test reviews"
        + (f"; test split {carved}" if carved.startswith("carved") else "")
        + "".join(f"; {note}" for note in facts.data_notes(SHOWN_IN_TERMINAL))
    )


def write_facts(session: Session, lstm: LstmFacts) -> RunFacts:
    """run.json: what a reader needs to interpret the run (new, or updated on resume, with a record
    of this session); written at once, so a driver killed from here on leaves a run that resumes."""
    search, run_dir = session.search, session.run_dir
    previous = RunFacts.read(run_dir) if session.resume else None
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    train = shared_train_fields(session.train_base(lstm.trials))
    facts = RunFacts(
        command=previous.command if previous else session.command,
        started_at=previous.started_at if previous else now,
        configs=recorded_configs(search, session.data_config, train, session.certify, session.benchmark),
        data=session.prepared.facts.naming(session.data_config.source),  # cached facts name the first source
        space=[p.to_json() for p in session.space],
        study=STUDY_NAME,
        objective=search.ranking,
        presets={name: preset_point(name, session.space) for name in TUTORIAL_PRESETS},
        start_point=previous.start_point if previous else start_point(session.space),
        fidelity=previous.fidelity if previous else session.fidelity,
        resources=session.resources,
        memory=previous.memory if previous else session.memory_facts(lstm.trials),
        lstm=lstm,
        versions=library_versions(),
        sessions=[
            *timed(previous.sessions if previous else [], run_dir, now),
            SessionRecord(started_at=now, command=session.command),
        ],
        warm_start=previous.warm_start if previous else (session.warm_plan.sources if session.warm_plan else None),
    )
    facts.write(run_dir)
    return facts


def timed(sessions: list[SessionRecord], run_dir: RunDir, now: str) -> list[SessionRecord]:
    """The earlier sessions, each killed outright (it recorded no `search_s`) given the seconds
    epochs.csv shows it searched (`runfiles.trials.searched_s`), so that --time-budget and the
    header count them; each session ends where the next began."""
    ends = [s.started_at for s in sessions[1:]] + [now]
    unix = lambda text: datetime.datetime.fromisoformat(text).timestamp()
    return [
        s if s.search_s is not None else replace(s, search_s=searched_s(run_dir, unix(s.started_at), unix(end)))
        for s, end in zip(sessions, ends)
    ]


if __name__ == "__main__":
    sys.exit(main())
