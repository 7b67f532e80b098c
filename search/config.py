"""What a search run is asked to do: its typed config, the resources it gets, its command line.

`SearchConfig` is the one source of the run's options: `parse_args` derives the flags
(type, default, help) from its fields, and a resumed run takes the recorded values back
from run.json, accepting new values only for the options that may change on resume.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models import LstmChoice
from runfiles.cli import ArgumentParser, UsageError, add_fields, given_path, recorded_config
from runfiles.documents import Resources, RunFacts
from runfiles.layout import Objective, objective_named
from search.data import READ_FIELDS, VECTOR_FIELDS, DataConfig, absolute_source
from search.space import FROM_VECTORS, PARAMS, SPACE, WITH_VECTORS, narrowed, parse_fixed

SMOKE = {"limit": 2000, "test_limit": 2000, "trials": 6, "max_epochs": 2, "fixed": {"max_len": 128}}
"""--smoke: small enough for a 2-core laptop in a few minutes, yet the whole pipeline."""


TPE_TRIALS = 1000
"""The study trials TPE proposes by default (--tpe-trials): Optuna's docs recommend TPE for budgets of
100 to 1,000 trials, its cost per proposal growing with the trials that ended (O(d n log n))."""


@dataclass(frozen=True)
class SearchConfig:
    """What is searched, for how long, and on which resources."""

    trials: int | None = None
    """Trials to run, the tutorial's two models included (none: 20, or with --budget-examples
    twice the configurations its fidelity plan pays for, at least 20; the budget ends the search first)."""
    max_epochs: int | None = None
    """Epochs a trial trains if neither ASHA nor a budget stops it (none: planned from
    --budget-examples and the training split's size, see docs/search.md; 10 without that budget)."""
    grace_period: int = 1
    """Epochs every trial trains before ASHA may stop it."""
    time_budget_min: float | None = dataclasses.field(default=None, metadata={"metavar": "MINUTES"})
    """Minutes the search may run; then running trials stop at once (none: no limit)."""
    budget_examples: int | None = None
    """Training examples the search may process, summed over all trials; no trial starts an
    epoch the remaining budget cannot pay for, running ones finish theirs (none: no limit)."""
    gpus: float = 0
    """GPUs used in total; 0 trains on CPUs."""
    gpus_per_trial: float = 1
    """Each trial's share of a GPU (a fraction packs several trials on one GPU)."""
    cpus: int | None = None
    """CPUs used in total (none: all of this machine's or the cluster's)."""
    cpus_per_trial: int | None = None
    """CPUs (and TensorFlow threads) per trial (none: 1 on CPUs, an even share with GPUs)."""
    address: str | None = None
    """Address of a running Ray cluster ('auto', HOST:PORT or ray://HOST:10001); none starts Ray here."""
    storage: str | None = dataclasses.field(default=None, metadata={"metavar": "PATH_OR_URI"})
    """Where Ray Tune writes the experiment from every node, and the driver copies the run directory
    at the end: a folder all nodes share, or a URI such as s3://bucket/prefix (none: --out only)."""
    resource_wait_min: float = dataclasses.field(default=15, metadata={"metavar": "MINUTES"})
    """Minutes to wait for a cluster's autoscaler to add the GPUs asked for before giving up."""
    seed: int = 0
    """Seeds Optuna's sampler, the data split and every trial."""
    startup_trials: int = 10
    """Trials Optuna's TPE samples at random before it models the results (its n_startup_trials)."""
    tpe_trials: int = TPE_TRIALS
    """Study trials Optuna's TPE proposes (Optuna's docs advise TPE for up to about 1,000 trials); its
    RandomSampler proposes those after them, at a cost that does not grow with the study."""
    lstm: LstmChoice = "auto"
    """The LSTM implementation: 'auto' = the fused kernel on CPUs, Keras's layers (cuDNN) on GPUs."""
    max_failures: int = 2
    """Times a trial that raises is retried from its last checkpoint before it counts as errored."""
    objective: str = "val_accuracy"
    """What ranks trials everywhere (ASHA, Optuna, the leaderboard, export, certification):
    val_accuracy, val_macro_f1 (F1 averaged over the classes, for unbalanced classes) or val_loss."""
    max_latency_ms: float | None = None
    """Trials whose network takes longer per review at batch 1 (median, search.train.inference_latency_ms)
    are infeasible: Optuna's sampler learns the limit (its constraints_func) and they are never
    exported (none: no limit)."""
    mlflow: str | None = dataclasses.field(default=None, metadata={"metavar": "URI"})
    """An MLflow tracking URI to log every trial and the run's outcome to (the mlflow extra): a
    server (http://127.0.0.1:5000), a folder (PATH or file:///PATH), a SQLite file
    (sqlite:///mlflow.db) or a database server (postgresql://...); none: no MLflow."""
    fixed: dict = dataclasses.field(default_factory=dict)
    """Hyperparameters pinned to one value instead of searched."""

    def __post_init__(self) -> None:
        lows = {"trials": 1, "max_epochs": 1, "grace_period": 1, "max_failures": 0, "startup_trials": 0, "tpe_trials": 0}
        for name, low in lows.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise UsageError(f"--{name.replace('_', '-')} {value} is invalid: expected an integer >= {low}")
        if self.max_epochs is not None and self.grace_period > self.max_epochs:
            raise UsageError(f"--grace-period {self.grace_period} is invalid: expected at most --max-epochs ({self.max_epochs})")
        if self.time_budget_min is not None and not (math.isfinite(self.time_budget_min) and self.time_budget_min > 0):
            raise UsageError(f"--time-budget {self.time_budget_min} is invalid: expected a finite number of minutes > 0")
        if self.max_latency_ms is not None and not (math.isfinite(self.max_latency_ms) and self.max_latency_ms > 0):
            raise UsageError(f"--max-latency-ms {self.max_latency_ms} is invalid: expected milliseconds > 0")
        if self.storage is not None and not self.storage.strip():
            raise UsageError("--storage '': names no place; give a folder all nodes share or a URI, or leave --storage out")
        if self.budget_examples is not None and self.budget_examples < 1:
            raise UsageError(f"--budget-examples {self.budget_examples} is invalid: expected an integer >= 1")
        if not (math.isfinite(self.gpus) and self.gpus >= 0):
            raise UsageError(f"--gpus {self.gpus} is invalid: expected 0 or more")
        if not (math.isfinite(self.resource_wait_min) and self.resource_wait_min >= 0):
            raise UsageError(f"--resource-wait {self.resource_wait_min} is invalid: expected minutes >= 0")
        if not 0 < self.gpus_per_trial <= max(1.0, self.gpus):
            raise UsageError(
                f"--gpus-per-trial {self.gpus_per_trial} is invalid: expected a share in (0, {max(1.0, self.gpus):g}]"
            )
        try:
            objective_named(self.objective)
        except ValueError as error:
            raise UsageError(str(error)) from None
        for name in ("cpus", "cpus_per_trial"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} {value} is invalid: expected an integer >= 1")

    @property
    def time_budget_s(self) -> float | None:
        return self.time_budget_min * 60 if self.time_budget_min else None

    @property
    def ranking(self) -> Objective:
        """The run's Objective: `objective` with its direction."""
        return objective_named(self.objective)

    @property
    def space(self):
        """The search space with this run's pinned values."""
        return narrowed(SPACE, self.fixed)

    @classmethod
    def recorded(cls, values: dict) -> SearchConfig:
        """The config a run recorded in run.json's configs.search. Raises UsageError for a key this
        version does not know (`runfiles.cli.recorded_config`)."""
        return recorded_config(cls, values, "run.json's configs.search")


@dataclass(frozen=True)
class CertifyConfig:
    """How a search's result is certified."""

    top: int = 3
    """Configurations re-trained: the best ones by the run's objective (runfiles.layout.rank_key)."""
    seeds: int = 3
    """Fresh seeds each configuration is re-trained with."""
    refit: bool = True
    """Then fit the chosen configuration on train + validation with the same seeds, and ship that."""
    ensemble: bool = False
    """Ship the mean of the refits' logits, one model.keras of every seed's network, instead of
    the refit of the seed that validated best (as many times the inference cost as seeds)."""
    cv: int = 0
    """Also cross-validate the top configurations with this many stratified folds over train +
    validation, each with every seed (0: no cross-validation; else at least 2)."""
    ablation: bool = True
    """When the exported configuration has the linear part (ngram_buckets > 0), also train its
    network alone and its linear part alone with the same seeds and epochs, and test them."""

    def __post_init__(self) -> None:
        if self.ensemble and not self.refit:
            raise UsageError("--ensemble averages the refits: drop --no-refit")
        if self.cv == 1 or self.cv < 0:
            raise UsageError(f"--cv {self.cv} is invalid: expected 0 (none) or an integer >= 2")
        for name in ("top", "seeds"):
            check_count(f"--{name}", getattr(self, name))


def check_count(flag: str, value: int) -> None:
    """UsageError naming `flag` unless `value` (certification's configurations or seeds) is at least 1."""
    if value < 1:
        raise UsageError(f"{flag} {value} is invalid: expected an integer >= 1")


CERTIFY_COUNT_FLAGS = {"top": "--certify-top", "seeds": "--certify-seeds"}
"""search.run's flags for CertifyConfig.top and .seeds (search.certify's --top and --seeds)."""


def check_folds(k: int, class_counts: dict | None) -> None:
    """UsageError when --cv k asks for more folds than a class has labelled training examples;
    `class_counts`: reviews per split and class ({"train"|"val"|"test": {class: count}}, as
    DataFacts.class_counts), of which train + validation are cross-validated."""
    counts = (class_counts or {}) if k else {}
    labelled: dict[str, int] = {}
    for split in ("train", "val"):
        for name, count in (counts.get(split) or {}).items():
            labelled[name] = labelled.get(name, 0) + int(count)
    if labelled and min(labelled.values()) < k:
        name = min(labelled, key=labelled.get)
        raise UsageError(
            f"--cv {k}: class {name!r} has {labelled[name]} labelled training examples; give at most --cv {labelled[name]}"
        )


RESUMABLE = (
    "trials",
    "time_budget_min",
    "budget_examples",
    "gpus",
    "gpus_per_trial",
    "cpus",
    "cpus_per_trial",
    "address",
    "resource_wait_min",
    "max_failures",
    "lstm",
    "mlflow",
)
"""Options a resumed run may change; every other one keeps the value the run started with."""
GROWING = ("trials", "budget_examples", "time_budget_min")
"""Resumable options that continue a run only with more: a smaller value than the run's is refused."""


def plan_resources(config: SearchConfig, available: dict) -> Resources:
    """Per-trial shares and concurrency; asking for more GPUs or CPUs than there are is a UsageError."""
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
    memory_mb = 0 if gpus_per_trial else int(available.get("memory", 0) * per_trial / max(1, have_cpus) // 2**20)
    concurrency = min(concurrency, config.trials or concurrency)
    return Resources(cpus, config.gpus, per_trial, gpus_per_trial, concurrency, config.address, memory_mb)


def local_cpus() -> int:
    """CPUs this process may use on this machine."""
    return len(os.sched_getaffinity(0))


REDUCTION_FACTOR = 3
"""ASHA's eta: a rung keeps the best third of the trials that reach it (Li et al. 2020, and
Ray Tune's default for ASHAScheduler)."""
UNPLANNED_EPOCHS = 10
"""--max-epochs without an examples budget to plan from: the tutorial's 10 epochs."""
DEFAULT_TRIALS = 20
"""--trials without an examples budget to plan from."""


@dataclass(frozen=True)
class FidelityPlan:
    """How a budget of training examples is spent: run.json's "fidelity"."""

    max_epochs: int
    """Epochs a trial trains when no rung stops it: eta ** promotions."""
    rungs: list[int]
    """Epochs at which ASHA compares trials: 1, eta, eta**2, ... up to max_epochs."""
    budget_epochs: float
    """The budget in epochs of the training split."""
    configurations: int
    """Configurations the budget pays for at this fidelity (ASHA keeping the best 1/eta at each rung)."""
    rule: str = ""
    """The rule, in words (the header prints it)."""


def plan_fidelity(budget_examples: int, train_size: int, eta: int = REDUCTION_FACTOR) -> FidelityPlan:
    """The largest fidelity at which the budget still runs a full successive-halving bracket.

    With s promotions (rungs at 1, eta, ..., eta**s epochs) and n configurations started,
    ASHA keeping the best 1/eta at each rung spends n * (1 + s * (eta - 1) / eta) epochs.
    Hyperband's most exploratory bracket starts eta**s configurations so that one reaches
    the top (Li et al. 2018, "Hyperband", section 3); here eta**(s + 1) must fit, so that the
    top rung still compares eta trials. The plan takes the largest s whose bracket the budget
    pays for (s = 0 when none: every trial trains one epoch and is compared there).

    `budget_examples` and `train_size` in training examples (> 0). Returns the plan.
    """
    budget_epochs = budget_examples / train_size

    def cost(s: int) -> float:  # epochs per configuration started
        return 1 + s * (eta - 1) / eta

    promotions = 0
    while eta ** (promotions + 2) * cost(promotions + 1) <= budget_epochs:
        promotions += 1
    max_epochs, rungs = eta**promotions, [eta**k for k in range(promotions + 1)]
    configurations = max(1, math.floor(budget_epochs / cost(promotions)))
    return FidelityPlan(
        max_epochs=max_epochs,
        rungs=rungs,
        budget_epochs=round(budget_epochs, 3),
        configurations=configurations,
        rule=(
            f"{budget_epochs:.3g} epochs of the training split: about {configurations} configuration"
            f"{'s' * (configurations > 1)}"
            + (
                f", rungs at epochs {', '.join(map(str, rungs))}, the best 1/{eta} of each rung trained on"
                if promotions
                else " of 1 epoch each, compared there"
            )
        ),
    )


def planned(search: SearchConfig, train_size: int) -> tuple[SearchConfig, FidelityPlan | None]:
    """A new run's search with what was left to the data: without --max-epochs, the epochs
    `plan_fidelity` derives from the examples budget (UNPLANNED_EPOCHS without one); without
    --trials, as many as the plan's configurations twice over (the examples budget ends the
    search first), or DEFAULT_TRIALS. The plan is None when --max-epochs was given or no
    examples budget was."""
    plan = None
    values = {}
    if search.max_epochs is None:
        if search.budget_examples:
            plan = plan_fidelity(search.budget_examples, train_size)
        values["max_epochs"] = plan.max_epochs if plan else UNPLANNED_EPOCHS
    if search.trials is None:
        values["trials"] = max(DEFAULT_TRIALS, 2 * plan.configurations) if plan else DEFAULT_TRIALS
    return dataclasses.replace(search, **values), plan


# ---------------------------------------------------------------- command line

SEARCH_FLAGS = {"time_budget_min": "--time-budget", "resource_wait_min": "--resource-wait"}
SEARCH_FIELDS = [f.name for f in dataclasses.fields(SearchConfig) if f.name != "fixed"]
DATA_FIELDS = ["source", *READ_FIELDS, "val_fraction", "limit", "val_block", "allow_overlap", *VECTOR_FIELDS]
"""The DataConfig fields search.run takes as flags (the rest follow from --smoke and the search)."""
RUN_SWITCHES = {
    "--resume": "continue the run in --out (interrupted, or with more trials or budget)",
    "--smoke": f"a few-minute run of the whole pipeline on a subset: {SMOKE}",
    "--certify": f"then re-train the top {CertifyConfig.top} configurations ({CERTIFY_COUNT_FLAGS['top']}) with "
    f"{CertifyConfig.seeds} fresh seeds each ({CERTIFY_COUNT_FLAGS['seeds']}) and export the best on average "
    "(python -m search.certify does it on a finished run)",
    "--ensemble": "with --certify, export the mean of the refits' logits (one model.keras of every seed's network) "
    "instead of the refit of the seed that validated best",
    "--no-ablation": "with --certify, skip training the exported configuration's network alone and linear part alone",
    "--no-benchmark": "skip the serving benchmark of the exported model at the end (python -m search.serving DIR does it later)",
    "--verbose": "also show what Ray, Tune and TensorFlow print (Tune's trial tables; otherwise in DIR/driver.log)",
}
"""search.run's switches that are no config's fields (off unless given), with their help."""


WARM_START_TOP = 3
"""--warm-start-top: as many configurations as certification retrains by default (CertifyConfig.top),
so that a certified run hands on what it certified, and a few of a new run's trials."""
WARM_FLAG, WARM_TOP_FLAG = "--warm-start", "--warm-start-top"
"""search.run's flags of a warm start (search.warm)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The namespace holds only the options given (flags not given are absent)."""
    parser = ArgumentParser(
        prog="python -m search.run",
        description="Search single and stacked BiLSTMs on IMDB with Ray Tune + Optuna.",
        epilog="Searched: " + "; ".join(f"{p.name} {p.describe()} ({p.help})" for p in SPACE),
    )
    add_fields(parser, SearchConfig, SEARCH_FIELDS, flags=SEARCH_FLAGS, suppress=True)
    add_fields(parser, DataConfig, DATA_FIELDS, flags={"source": "--data"}, suppress=True)
    parser.add_argument(
        "--fix",
        action="append",
        metavar="NAME=VALUE",
        default=argparse.SUPPRESS,
        help="pin a searched hyperparameter to one value, e.g. --fix max_len=256 (repeatable)",
    )
    parser.add_argument("--out", type=given_path, default=argparse.SUPPRESS, help="run directory (default: runs/<date-time>)")
    for flag, help in RUN_SWITCHES.items():
        parser.add_argument(flag, action="store_true", help=help)
    add_fields(parser, CertifyConfig, ["cv", *CERTIFY_COUNT_FLAGS], flags=CERTIFY_COUNT_FLAGS, suppress=True)
    parser.add_argument(
        WARM_FLAG,
        nargs="+",
        type=given_path,
        metavar="RUN",
        default=argparse.SUPPRESS,
        help="learn from earlier runs (docs/search.md#warm-start): on the same data their trials enter the study, "
        "on other data their best configurations are queued first",
    )
    parser.add_argument(
        WARM_TOP_FLAG,
        type=int,
        metavar="K",
        default=argparse.SUPPRESS,
        help=f"configurations queued from each earlier run on other data, certified ones first (default {WARM_START_TOP})",
    )
    return parser.parse_args(argv)


def run_dir_of(args: argparse.Namespace) -> Path:
    """--out with ~ expanded, or runs/<date-time>."""
    if hasattr(args, "out"):
        return Path(os.path.expanduser(args.out))
    return Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def configs_from_args(args: argparse.Namespace) -> tuple[SearchConfig, DataConfig]:
    """A new run's configs: the dataclasses' defaults, then --smoke's, then the flags given."""
    given = vars(args)
    smoke = SMOKE if args.smoke else {}
    if "budget_examples" in given:  # the budget plans the fidelity and the trials (plan_fidelity), --smoke or not
        smoke = {k: v for k, v in smoke.items() if k not in ("trials", "max_epochs")}
    search_values = {k: v for k, v in smoke.items() if k in SEARCH_FIELDS} | {k: given[k] for k in SEARCH_FIELDS if k in given}
    fixed = dict(smoke.get("fixed", {})) | parse_fixed(given.get("fix", []))
    search = SearchConfig(**search_values, fixed=fixed)
    data_values = {"limit": smoke.get("limit"), "test_limit": smoke.get("test_limit")}
    data_values |= {k: given[k] for k in DATA_FIELDS if k in given}
    data = DataConfig(**data_values, max_vocab=max_vocab(search), seed=search.seed)
    if not data.source.strip():  # Path("") is the working folder, which would be read as data
        raise UsageError("--data '': names no data; give a file, a folder or tfds:NAME, or leave --data out")
    if data.embeddings == "":
        raise UsageError("--embeddings '': names no file; give a vectors file, or leave --embeddings out")
    vectors = data.embeddings and str(Path(data.embeddings).expanduser().resolve())
    return search, dataclasses.replace(data, source=absolute_source(data.source), embeddings=vectors or None)


def check_embeddings(search: SearchConfig, data: DataConfig) -> None:
    """What --fix asks of the vectors, checked before any data is read: the parameters WITH_VECTORS
    and --embeddings-format need --embeddings, embedding_dim follows the vectors' width
    (`search.data.vectors.sniff`, which raises DataError for a file that is not vectors), and
    without vectors it lies in its searched range (`FROM_VECTORS`). Raises UsageError, one line."""
    from search.data.vectors import FLAG, FORMAT_FLAG, sniff

    if not data.embeddings:
        if data.embeddings_format != "auto":
            raise UsageError(
                f"{FORMAT_FLAG} {data.embeddings_format}: names the format of {FLAG} FILE; give the file, or drop the flag"
            )
        for name in WITH_VECTORS & set(search.fixed):
            raise UsageError(f"--fix {name}={search.fixed[name]}: says how word vectors are used; give them with {FLAG} FILE")
        for name in FROM_VECTORS & set(search.fixed):
            if not PARAMS[name].contains(search.fixed[name]):
                raise UsageError(
                    f"--fix {name}={search.fixed[name]}: {name} must lie in {PARAMS[name].describe()}, or be the width of "
                    f"the vectors given with {FLAG} FILE"
                )
        return
    width = sniff(data.embeddings, data.embeddings_format).dim
    if "embedding_dim" in search.fixed and search.fixed["embedding_dim"] != width:
        raise UsageError(
            f"--fix embedding_dim={search.fixed['embedding_dim']}: the vectors of {FLAG} {data.embeddings} are {width} wide, "
            f"and the embedding's width follows them; drop it, or pin embedding_dim={width}"
        )


def max_vocab(search: SearchConfig) -> int:
    """The vocabulary the data is prepared with: the largest size any trial may use."""
    vocab = next(p for p in search.space if p.name == "vocab_size")
    return int(vocab.high if vocab.kind != "categorical" else max(vocab.choices))


def resumed_configs(args: argparse.Namespace, recorded: RunFacts) -> tuple[SearchConfig, DataConfig]:
    """The recorded configs of a run, with the resumable options given now, and --data and
    --embeddings where they are given: another spelling, a copy or a new place of the run's data or
    vectors file is accepted here, its content is compared with the run's by
    `search.run.check_same_data` and `check_same_vectors` (run.json then records the new path).

    Raises UsageError naming every option given now (or implied by --smoke) that cannot
    change on resume and differs from the value the run started with, each with both values, and
    for --embeddings on a run that trained without vectors.
    """
    wanted_search, wanted_data = configs_from_args(args)
    given = set(vars(args)) | (set(SMOKE) | {"fix", "test_limit"} if args.smoke else set())
    search_recorded, data_recorded = recorded.search_config, DataConfig.recorded(recorded.data_config)
    changed = [
        (_flag(k), getattr(wanted_search, k), search_recorded.get(k))
        for k in SEARCH_FIELDS
        if k in given and k not in RESUMABLE and getattr(wanted_search, k) != search_recorded.get(k)
    ]
    if "fix" in given and wanted_search.fixed != search_recorded.get("fixed"):
        changed.append(("--fix", wanted_search.fixed, search_recorded.get("fixed")))
    changed += [
        (_flag(k), getattr(wanted_data, k), getattr(data_recorded, k))
        for k in [*DATA_FIELDS, "test_limit"]
        if k in given and k not in REPOINTABLE and getattr(wanted_data, k) != getattr(data_recorded, k)
    ]
    if changed:
        named = list(dict.fromkeys(_changed_text(*change) for change in changed))
        raise UsageError(
            f"--resume: {', '.join(named)} cannot change on resume; "
            f"drop {'it' if len(named) == 1 else 'them'}, or start a new run with another --out"
        )
    updates = continued(search_recorded, {k: getattr(wanted_search, k) for k in RESUMABLE if k in given})
    if "embeddings" in given and not data_recorded.embeddings:
        raise UsageError(
            f"--resume: --embeddings {wanted_data.embeddings}: this run trained without word vectors; drop "
            "--embeddings, or start a new run with another --out"
        )
    data_recorded = dataclasses.replace(data_recorded, **{k: getattr(wanted_data, k) for k in REPOINTABLE if k in given})
    return SearchConfig.recorded({**search_recorded, **updates}), data_recorded


REPOINTABLE = ("source", "embeddings")
"""DataConfig fields --resume takes anew (--data, --embeddings): the same content in another place."""


def continued(recorded: dict, updates: dict) -> dict:
    """The resumable options given now (`updates`), checked to continue the `recorded` run with
    more (`GROWING`); a larger --budget-examples without --trials raises the trials in the same
    proportion (rounded up), so that the budget, not the trial count, ends the continued search.

    Raises UsageError naming the flag, the value given and the run's, for a value smaller than
    the run's (a run recorded without an examples budget takes any).
    """
    for name in GROWING:
        old, new = recorded.get(name), updates.get(name)
        if name in updates and old is not None and new < old:
            raise UsageError(
                f"--resume: {_flag(name)} {new} is smaller than the run's {old}; a run continues only with more "
                f"(give at least {old}), or start a new run with another --out"
            )
    old_budget, new_budget = recorded.get("budget_examples"), updates.get("budget_examples")
    if old_budget and new_budget and new_budget > old_budget and "trials" not in updates and recorded.get("trials"):
        updates = {**updates, "trials": math.ceil(recorded["trials"] * new_budget / old_budget)}
    return updates


def _changed_text(flag: str, given: Any, recorded: Any) -> str:
    """A flag given on resume that differs from the run's, with both values: "--seed 4 (the run's: 0)"."""
    if flag == "--smoke":  # its test split's limit, the one value --smoke sets that no flag names
        return "--smoke (the run started without it)"
    return f"{flag} {_shown(given)} (the run's: {_shown(recorded)})"


def _shown(value: Any) -> str:
    """A config value as a user types it: "depth=3,units=64" for --fix, "on"/"off", "none"."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, dict):
        return ",".join(f"{name}={v}" for name, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _flag(field: str) -> str:
    return {"source": "--data", "test_limit": "--smoke", **SEARCH_FLAGS}.get(field, "--" + field.replace("_", "-"))


def recorded_configs(
    search: SearchConfig, data: DataConfig, train: dict, certify: CertifyConfig | None = None, benchmark: bool = True
) -> dict[str, Any]:
    """The configs as run.json records them (and resumed_configs reads them back); `train`: the
    TrainConfig fields every trial shares (search.session.shared_train_fields); `certify`: the
    certification search.run runs after the search (None: none); `benchmark`: whether it
    measures the export's serving."""
    certified = dataclasses.asdict(certify) if certify else None
    return RunFacts.configs_of(dataclasses.asdict(search), dataclasses.asdict(data), train, certified, benchmark)
