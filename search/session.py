"""One driver session of a run: what every phase reads, Ray started or joined, follow-up commands.

`Session` is built once per driver session (a search, or `python -m search.certify` /
`python -m search.baseline` on a finished run) and handed to every phase; `ray_session`
starts Ray here or connects to a cluster; `follow_up` runs a command on a finished run in
its own session; `build_report` ends every session with the HTML report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from models.config import logits_for
from runfiles.cli import INTERRUPTED, UsageError, fail, machine_fault, sigterm_as_ctrl_c, stop_on_sigterm
from runfiles.documents import MemoryFacts, Resources, RunFacts
from runfiles.layout import Objective, Param, RunDir
from runfiles.lock import holding
from search import faults, warm
from search.config import WARM_START_TOP, CertifyConfig, SearchConfig, local_cpus, plan_resources
from search.console import Progress, keep_log, quiet_libraries
from search.data import DataConfig, DataError, Prepared, check_source, data_fingerprint, prepare
from search.memory import training_memory_mb
from search.space import distinct_bigrams, fitted, widest
from search.train import TrainConfig, review_tokens


@dataclass
class Session:
    """One driver session of a run: what every phase reads."""

    run_dir: RunDir
    search: SearchConfig
    data_config: DataConfig
    prepared: Prepared
    resources: Resources
    command: str
    resume: bool
    started: float
    """Unix seconds when the session started."""
    progress: Progress
    verbose: bool = False
    certify: CertifyConfig | None = None
    """How to certify the search's result at its end (search.certify), or None."""
    benchmark: bool = True
    """Measure the exported model for serving at the end (search.serving)."""
    space: tuple[Param, ...] = ()
    """The run's search space: pinned values, and the ranges fitted to the prepared data."""
    fidelity: dict | None = None
    """The fidelity plan of a new run (search.config.plan_fidelity), or None: --max-epochs was
    given, or no examples budget, or the run is resumed (run.json keeps its plan)."""
    facts: RunFacts | None = None
    """run.json as a search session wrote it (search.run.write_facts), updated here and written
    at each update: its phases read it from memory, not from the disk."""
    warm_runs: tuple = ()
    """The earlier runs a new run learns from (--warm-start, `search.warm.check_runs`), checked before Ray starts."""
    warm_top: int = WARM_START_TOP
    """Configurations queued from each earlier run on other data (--warm-start-top)."""
    warm_plan: warm.WarmPlan | None = None
    """What the earlier runs hand the new study (`search.warm.plan`, once the space is fitted), or None."""
    exported_before: bool = False
    """The export (and certification) of an earlier session stands: the best trial is unchanged
    (search.outcome.export_and_summarize), so its serving benchmark stands too."""
    memory_mb: int | None = None
    """MiB the training of each trial may use (TrainConfig.memory_mb): a new run's from its
    resources and data (search.memory.training_memory_mb), a resumed run's as run.json records it,
    so that its trials keep cutting reviews as they did (0: no bound)."""

    def __post_init__(self) -> None:
        if not self.space:
            self.space = run_space(self.run_dir, self.search, self.prepared, self.resume)
        if self.memory_mb is None:
            self.memory_mb = run_memory_mb(self.run_dir, self.resources, self.prepared, self.resume)

    @property
    def objective(self) -> Objective:
        """What ranks this run's trials (`SearchConfig.ranking`)."""
        return self.search.ranking

    def train_base(self, lstm: str) -> TrainConfig:
        """What every trial and retraining of this run shares: epochs, seed, threads and the LSTM
        implementation (`lstm`, run.json's `LstmFacts.trials`). A trial completes it with its sampled
        values (`search.space.configs_from`), a retraining then with its own epochs and seed."""
        return TrainConfig(
            epochs=self.search.max_epochs,
            seed=self.search.seed,
            threads=self.resources.cpus_per_trial,
            lstm=lstm,
            memory_mb=self.memory_mb,
        )

    def memory_facts(self, lstm: str) -> MemoryFacts | None:
        """run.json's memory: what each trial may use, and where memory cuts reviews in the space's
        widest configuration (`search.space.widest`) with `lstm`: the tokens a review keeps there
        (0: memory cuts none) and the training and validation reviews longer than that; None
        without a bound (trials on GPUs, or a run recorded before it)."""
        if not self.memory_mb:
            return None
        model, train = widest(self.space, len(self.prepared.classes))
        kept = review_tokens(model, dataclasses.replace(train, memory_mb=self.memory_mb, lstm=lstm), self.prepared)
        cut = kept if kept != train.max_len else 0
        splits = {name: self.prepared.splits[name].lengths for name in ("train", "val")}
        return MemoryFacts(
            trial_mb=self.resources.trial_memory_mb,
            training_mb=self.memory_mb,
            widest={"batch_size": train.batch_size, "max_len": train.max_len, **model.to_dict()},
            widest_tokens=cut,
            reviews_longer={name: int((lengths > cut).sum()) if cut else 0 for name, lengths in splits.items()},
        )


SHARED_TRAIN_FIELDS = ("epochs", "seed", "threads", "lstm", "memory_mb")
"""The TrainConfig fields every trial shares, as run.json's configs["train"] records them."""


def shared_train_fields(base: TrainConfig) -> dict:
    """The fields of `Session.train_base` that run.json records."""
    return {name: getattr(base, name) for name in SHARED_TRAIN_FIELDS}


def run_space(run_dir: RunDir, search: SearchConfig, prepared: Prepared, resume: bool) -> tuple[Param, ...]:
    """A resumed run's recorded space; a new run's, fitted to its data (search.space.fitted)."""
    if resume:
        return tuple(Param.from_json(entry) for entry in RunFacts.read(run_dir).space)
    train, logits = prepared.splits["train"], logits_for(len(prepared.classes))
    bigrams, width = distinct_bigrams(train.tokens, train.offsets), prepared.vectors and prepared.vectors.dim
    return fitted(search.space, len(prepared.vocabulary), train.lengths, bigrams, logits, width or None)


def run_memory_mb(run_dir: RunDir, resources: Resources, prepared: Prepared, resume: bool) -> int:
    """A resumed run's recorded TrainConfig.memory_mb (0 for a run recorded before it); a new run's
    from its trials' share of memory (`Resources.trial_memory_mb`) less the trials' data."""
    if resume:
        return int(RunFacts.read(run_dir).configs.get("train", {}).get("memory_mb") or 0)
    data_tokens = sum(len(prepared.splits[name].tokens) for name in ("train", "val"))
    return training_memory_mb(resources.trial_memory_mb, data_tokens)


@contextlib.contextmanager
def ray_session(search: SearchConfig, verbose: bool = False) -> Iterator[str | None]:
    """Connect to the cluster at --address or start Ray here; yields why it failed, or None."""
    import ray  # Ray loads here, not on `python -m search.run --help`

    started_here = False
    try:
        if not ray.is_initialized():
            env_vars = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", **faults.environment()}
            options = {
                "runtime_env": {"env_vars": env_vars},
                "log_to_driver": False,
                "logging_level": logging.INFO if verbose else logging.CRITICAL,
            }
            if search.address:
                ray.init(address=search.address, **options)
            else:
                # "local": a Ray of our own even where `ray start` or RAY_ADDRESS points at another
                ray.init(address="local", num_cpus=search.cpus or local_cpus(), include_dashboard=False, **options)
            started_here = True
            stop_on_sigterm()  # again: Ray's failure-signal handler (an abort on SIGTERM) took its place
    except KeyboardInterrupt:  # Ctrl-C while Ray starts: stop what it started so far
        ray.shutdown()
        raise
    except SystemExit as stop:  # SIGTERM while Ray starts: Ray's own handler, set in ray.init, exits with its number
        if stop.code != signal.SIGTERM:
            raise
        ray.shutdown()
        raise KeyboardInterrupt from None  # stopped as Ctrl-C stops it (runfiles.cli.stop_on_sigterm)
    except Exception as error:  # a wrong --address, or a cluster that refuses us
        yield (str(error).strip().splitlines() or [type(error).__name__])[0]
        return
    try:
        yield None
    finally:
        if started_here:
            ray.shutdown()


def follow_up(run_dir: RunDir, work: Callable[[Session], None], command: str, trains: bool = True) -> int:
    """A command on a finished run in its own driver session (python -m search.certify,
    python -m search.baseline), holding the run directory's lock: the run's own data (checked to
    be what it trained on) and resources, then `work(session)`, then the report; the exit code.
    `trains`: False for work done in this process alone (the linear baseline), which starts no Ray
    and plans no resources (the session's are Resources()). Ctrl-C or SIGTERM stops it with exit
    INTERRUPTED, the lock released, and says to run it again (each document is replaced whole,
    so the run keeps every one as it was or as this command finished it)."""
    try:
        with sigterm_as_ctrl_c(), holding(run_dir, command):
            return _follow_up(run_dir, work, command, trains)
    except KeyboardInterrupt:
        print(f"interrupted; run it again with: {command}", file=sys.stderr)
        return INTERRUPTED
    except UsageError as error:
        return fail(error)
    except OSError as error:
        return machine_failed(error, run_dir, again=command)


def _follow_up(run_dir: RunDir, work: Callable[[Session], None], command: str, trains: bool) -> int:
    recorded = RunFacts.read(run_dir)
    search = SearchConfig.recorded(recorded.search_config)
    data_config = DataConfig.recorded(recorded.data_config)
    prog, repoint = " ".join(shlex.split(command)[:3]), f"{run_dir.resume_command} --data PATH"
    try:
        check_source(data_config.source, data_config.read_options)
        where = f"{prog}: the run's data, {data_config.source},"
        check_same_vectors(data_config, recorded, prog, repoint_vectors(run_dir))
        check_same_data(data_config, recorded, where, f"point the run at its own data with: {repoint}")
    except DataError:
        return fail(f"{prog}: the run's data, {data_config.source}, cannot be read here; point the run at it with: {repoint}")
    except UsageError as error:
        return fail(error)
    progress = Progress()
    on_ray = ray_session(search) if trains else contextlib.nullcontext()
    with quiet_libraries(False, progress, run_dir.session_log) as log, on_ray as failure:
        if failure:
            return fail(ray_failure(search, failure))
        try:
            resources = plan_resources(search, _ray_resources()) if trains else Resources()
            session = Session(run_dir, search, data_config, prepare(data_config), resources, "", True, time.time(), progress)
            work(session)
        except (UsageError, DataError) as error:
            return fail(error)
        except Exception as error:  # a full or read-only disk, perhaps wrapped by Ray
            return machine_failed(error, run_dir, again=command)
        finally:
            keep_log(log, run_dir)
        build_report(run_dir, progress)
    return 0


def _ray_resources() -> dict:
    import ray  # started by ray_session

    return ray.cluster_resources()


def ray_failure(search: SearchConfig, failure: str) -> str:
    """The one line for Ray that would not start here, or a cluster that would not connect."""
    if search.address:
        return f"--address {search.address}: could not connect to Ray ({failure})"
    return f"Ray could not start on this machine ({failure})"


OWN_VECTORS = "give --embeddings the path of the run's own file (moved or renamed, it is the same by its sha256)"
"""What makes a run's word vectors what it trained with again on --resume, which records the path given."""


def repoint_vectors(run_dir: RunDir) -> str:
    """What makes a run's word vectors what it trained with again, for a command that reads them only
    where run.json records them (python -m search.certify, search.baseline): a resume naming the file."""
    return f"point the run at its own file with: {run_dir.resume_command} --embeddings PATH"


def check_same_vectors(data_config: DataConfig, recorded: RunFacts, prog: str, advice: str) -> None:
    """A run goes on only with the word vectors it started with: the same sha256 as run.json's
    (`EmbeddingFacts.sha256`), wherever the file lies now. Raises UsageError, one line naming `prog`
    and the file (changed or gone), then `advice`: what would work in the command `prog` names; a
    new path given for it (--resume --embeddings) that is no file is named as such, with the sha256."""
    from search.data.vectors import FLAG, file_fingerprint

    vectors = recorded.data.embeddings
    if not data_config.embeddings or vectors is None or not vectors.sha256:
        return
    if not Path(data_config.embeddings).is_file() and data_config.embeddings != recorded.data_config.get("embeddings"):
        raise UsageError(
            f"{prog}: {FLAG} {data_config.embeddings}: no such file; give the moved vectors file (sha256 "
            f"{vectors.sha256[:12]}...) the run trained with"
        )
    if not Path(data_config.embeddings).is_file():
        raise UsageError(f"{prog}: {FLAG} {data_config.embeddings}, the vectors file this run trained with, is gone; {advice}")
    found = file_fingerprint(data_config.embeddings)
    if found != vectors.sha256:
        raise UsageError(
            f"{prog}: {FLAG} {data_config.embeddings} is not the vectors file this run trained with (sha256 "
            f"{found[:12]}... here, {vectors.sha256[:12]}... in run.json); {advice}"
        )


def check_same_data(data_config: DataConfig, recorded: RunFacts, where: str, advice: str) -> None:
    """A run goes on only with the data it started with: the same content (`data_fingerprint`),
    wherever it lies now. Raises UsageError, one line: `where` (the command and the data), both
    fingerprints, and `advice`."""
    found = data_fingerprint(data_config)
    if recorded.fingerprint and found != recorded.fingerprint:
        raise UsageError(
            f"{where} is not the data this run trained on (fingerprint {found} here, {recorded.fingerprint} "
            f"in run.json); {advice}"
        )


def machine_failed(error: BaseException, run_dir: RunDir, again: str = "") -> int:
    """A full or read-only disk: one line naming it and how to go on (`again`, else the run's resume
    command once it has run.json), exit 1; any other error is raised again."""
    fault = machine_fault(error)
    if fault is None:
        raise error
    what, path = fault
    again = again or (run_dir.resume_command if run_dir.run_json.is_file() else "")
    go_on = f"continue with: {again}" if again else "run the command again"
    print(f"error: {what} writing {path or run_dir.root}; free space or make it writable, then {go_on}", file=sys.stderr)
    return 1


def build_report(run_dir: RunDir, progress: Progress) -> None:
    """The HTML report from the run directory; a failure is reported, the run's results stand."""
    try:
        import reports  # pandas and matplotlib load only when a report is built

        index = reports.build(run_dir.root)
    except Exception as error:
        progress.warn(
            f"the report could not be built ({type(error).__name__}: {error}); retry with: python -m reports {run_dir.root}"
        )
        return
    progress.field("report", str(index))
