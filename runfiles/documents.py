"""The run directory's documents as types: run.json, summary.json, baseline.json and certify.csv's rows.

Standard library only. This module is the one place that spells these documents' keys:
the driver (`search/`) writes them and the report (`reports/`) reads them through the
classes below, and docs/run-directory.md points here for their schemas.

- `to_json(objective)` gives the JSON object as it lies on disk; keys that are the
  objective's metric name (`val_accuracy`, `val_accuracy_mean`, ...) come from the
  `Objective` passed (the run's own), never from a field name.
- `from_json(value, objective)` is tolerant, so the report renders runs in progress,
  runs of older drivers and damaged files: a missing key takes the field's default, a
  nested part that is not an object (or a list that is not a list) takes its default,
  scalars are kept as found (readers coerce them), and unknown keys are KEPT in
  `extra` and written back after the known ones, so a rewrite loses nothing.
- Fields marked optional below are left out of `to_json` while they are None: they
  appear on disk only once known (a session's `search_s`, run.json's `nodes`, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runfiles.io import read_json, read_rows, write_json, write_rows
from runfiles.layout import OBJECTIVE, STUDY_NAME, Objective, Param, RunDir


def _meta(*, key: str = "", optional: bool = False, of: type | None = None, shape: type | None = None) -> dict:
    """A document field's metadata: its JSON key (a template: "{metric}" is the objective's metric),
    whether it is left out while None, the document type its value (or each item) holds, and for a
    field that may be None, the container type its value must have (`shape=dict`: anything else reads as None)."""
    return {"key": key, "optional": optional, "of": of, "shape": shape}


EXTRA = {"extra": True}
"""The metadata of a document's `extra` field: the keys this version does not know, kept as read."""


class Document:
    """What every document shares: `to_json` and a tolerant `from_json`, driven by the fields' metadata."""

    extra: dict

    def to_json(self, objective: Objective = OBJECTIVE) -> dict:
        """The JSON object as it lies on disk (optional fields that are None left out, then `extra`)."""
        out = {}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("optional"):
                continue
            out[_key(f, objective)] = _dump(value, objective)
        return out | {k: v for k, v in self.extra.items() if k not in out}

    @classmethod
    def from_json(cls, value: Any, objective: Objective = OBJECTIVE):
        """A document from its JSON object; anything but an object reads as an empty one (all defaults)."""
        value = value if isinstance(value, dict) else {}
        known, values = set(), {}
        for f in _fields(cls):
            key = _key(f, objective)
            known.add(key)
            if key in value:
                values[f.name] = _load(f, value[key], objective)
        return cls(**values, extra={k: v for k, v in value.items() if k not in known})


def _fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("extra")]


def _key(f: dataclasses.Field, objective: Objective) -> str:
    return (f.metadata.get("key") or f.name).replace("{metric}", objective.metric)


def _dump(value: Any, objective: Objective) -> Any:
    if isinstance(value, Document):
        return value.to_json(objective)
    if isinstance(value, list):
        return [_dump(v, objective) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v, objective) for k, v in value.items()}
    return value


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _load(f: dataclasses.Field, value: Any, objective: Objective) -> Any:
    """One field's value from JSON: nested documents built, containers of the wrong shape → the default."""
    of, default = f.metadata.get("of"), _default(f)
    if isinstance(default, list):
        if not isinstance(value, list):
            return default
        return [of.from_json(v, objective) for v in value if isinstance(v, dict)] if of else value
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return default
        return {k: of.from_json(v, objective) for k, v in value.items() if isinstance(v, dict)} if of else value
    if of is not None:
        return of.from_json(value, objective) if isinstance(value, dict) else None
    if f.metadata.get("shape") is dict:
        return value if isinstance(value, dict) else None
    return value


# ---------------------------------------------------------------- run.json


@dataclass
class SessionRecord(Document):
    """One driver session of a run (run.json's sessions[i]): a search, or a resume of it."""

    started_at: str = ""
    """When it started: ISO 8601, UTC, to the second."""
    command: str = ""
    """Its command line."""
    search_s: float | None = field(default=None, metadata=_meta(optional=True))
    """Seconds it spent searching (Tune's fit); absent until the session settles."""
    examples_used: int | None = field(default=None, metadata=_meta(optional=True))
    """Training examples the whole run had used when the session settled."""
    wall_s: float | None = field(default=None, metadata=_meta(optional=True))
    """Its wall time in seconds, until it settled, then until its summary; absent for a killed session."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class RunFacts(Document):
    """run.json: what a reader needs to interpret the run. Written when a session starts, then
    updated when it settles and when it writes its summary."""

    command: str = ""
    """The first session's command line."""
    started_at: str = ""
    """When the run started: ISO 8601, UTC."""
    configs: dict = field(default_factory=dict)
    """The configs: {"search": SearchConfig, "data": DataConfig, "train": the fields every trial shares}."""
    data: dict = field(default_factory=dict)
    """Data facts: source, fingerprint, split sizes and tokens, vocabulary size, how validation was split."""
    space: list = field(default_factory=list)
    """The search space: one `Param.to_json()` per hyperparameter (see `params`)."""
    study: str = STUDY_NAME
    """The Optuna study's name in study.db."""
    objective: Objective | None = field(default=None, metadata=_meta(optional=True))
    """The metric trials are ranked by and its direction ({metric, mode}); see `ranking`."""
    presets: dict = field(default_factory=dict)
    """The tutorial's models as points of the space: {preset name: {hyperparameter: value}}."""
    start_point: dict | None = field(default=None, metadata=_meta(shape=dict))
    """The point queued after the presets, or None when none was."""
    fidelity: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """How the examples budget is spent (search.config.FidelityPlan: max_epochs, rungs,
    budget_epochs, configurations, rule), or None when --max-epochs was given or no budget."""
    resources: dict = field(default_factory=dict)
    """What the run was given (search.config.Resources): cpus, gpus, per trial, concurrency, address."""
    memory: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """What a trial's memory holds (search.session.Session.memory_facts): trial_mb and training_mb,
    the space's widest configuration, the tokens a review keeps in it (widest_tokens; 0: whole) and
    the training and validation reviews longer than that (reviews_longer); None without a bound."""
    lstm: dict = field(default_factory=dict)
    """The LSTM implementation: {requested, trials, and kernel (a path) or reason (why Keras's)}."""
    versions: dict = field(default_factory=dict)
    """Library versions: {library: version}."""
    sessions: list[SessionRecord] = field(default_factory=list, metadata=_meta(of=SessionRecord))
    """One record per driver session, in order."""
    nodes: dict | None = field(default=None, metadata=_meta(optional=True, shape=dict))
    """Which implementation each node ran: {node id: {hostname, lstm: [...]}}; absent until a session settles."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know (an older driver's argv, ...), kept as read."""

    def to_json(self, objective: Objective | None = None) -> dict:
        """run.json as it lies on disk."""
        out = super().to_json(objective or self.ranking)
        if self.objective is not None:
            out["objective"] = dataclasses.asdict(self.objective)
        return out

    @classmethod
    def from_json(cls, value: Any, objective: Objective = OBJECTIVE) -> RunFacts:
        """run.json from its JSON object (tolerant; see the module's docstring)."""
        facts = super().from_json(value, objective)
        facts.objective = _objective(facts.objective)
        return facts

    @property
    def ranking(self) -> Objective:
        """The run's objective (OBJECTIVE's metric and mode where run.json names none)."""
        return self.objective or OBJECTIVE

    @property
    def params(self) -> list[Param]:
        """The search space as Params, skipping entries that are not one."""
        params = []
        for entry in self.space:
            try:
                params.append(Param.from_json(entry))
            except ValueError:
                continue
        return params

    @staticmethod
    def configs_of(search: dict, data: dict, train: dict) -> dict:
        """run.json's configs from the SearchConfig's, the DataConfig's and the shared TrainConfig's fields."""
        return {"search": search, "data": data, "train": train}

    @property
    def search_config(self) -> dict:
        """The recorded SearchConfig's fields."""
        return _dict(self.configs.get("search"))

    @property
    def data_config(self) -> dict:
        """The recorded DataConfig's fields."""
        return _dict(self.configs.get("data"))

    @property
    def source(self) -> Any:
        """Where the data came from: the data facts' source, else the data config's."""
        return self.data.get("source") or self.data_config.get("source")

    @property
    def fingerprint(self) -> Any:
        """The data's fingerprint, or None."""
        return self.data.get("fingerprint")

    @property
    def lstm_trials(self) -> str:
        """The LSTM implementation the trials were given (run.json's lstm's "trials")."""
        return self.lstm["trials"]

    def command_text(self) -> str:
        """The command line (an older driver recorded an argv list instead)."""
        return self.command or " ".join(map(str, self.extra.get("argv") or []))

    def search_s(self) -> float:
        """Seconds the run's sessions spent searching, as recorded so far."""
        return sum(float(s.search_s or 0.0) for s in self.sessions)

    def wall_s(self) -> float:
        """The run's wall time in seconds: the sessions' as recorded (a session killed outright recorded none)."""
        return sum(float(s.wall_s or 0.0) for s in self.sessions)

    @classmethod
    def read(cls, run_dir: RunDir) -> RunFacts | None:
        """run.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.run_json)
        return None if value is None else cls.from_json(value)

    def write(self, run_dir: RunDir) -> None:
        """Replace run.json at once."""
        write_json(run_dir.run_json, self.to_json())


def _objective(value: Any) -> Objective | None:
    """run.json's objective: a metric (default val_accuracy) and a mode ("min" or else "max")."""
    if not isinstance(value, dict):
        return None
    mode = "min" if str(value.get("mode") or "max").lower() == "min" else "max"
    return Objective(str(value.get("metric") or OBJECTIVE.metric), mode)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- certify.csv and summary.json


@dataclass
class CertifyRow(Document):
    """One certification seed: a row of certify.csv, and an entry of a certified configuration's seeds."""

    trial_id: str = ""
    """The trial whose configuration was re-trained."""
    rank: int | None = None
    """Its rank among the certified configurations (1 = best by the objective)."""
    seed: int | None = None
    """The fresh seed (the run's seed + 1, + 2, ...)."""
    epochs: int | None = None
    """Epochs trained, as many as its trial trained."""
    best_epoch: int | None = None
    """The epoch kept: the best by the objective."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at that epoch (key: the objective's metric, e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """Accuracy of that epoch's model on the test split."""
    examples: int | None = None
    """Training examples processed."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Macro-F1 of that epoch's model on the test split (absent in runs certified before it was recorded)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    INTEGERS: ClassVar[tuple[str, ...]] = ("rank", "seed", "epochs", "best_epoch", "examples")
    """The fields certify.csv holds as integers (trial_id is text, the rest numbers)."""

    @classmethod
    def from_row(cls, cells: dict, objective: Objective = OBJECTIVE) -> CertifyRow:
        """A row of certify.csv (text cells) → CertifyRow: integers and numbers parsed, empty cells None."""
        values = {}
        for f in _fields(cls):
            key = _key(f, objective)
            if key in cells:
                values[key] = cells[key] if f.name == "trial_id" else _number(cells[key], f.name in cls.INTEGERS)
        return cls.from_json(values, objective)

    @staticmethod
    def columns(objective: Objective = OBJECTIVE) -> list[str]:
        """certify.csv's columns, in order."""
        return [_key(f, objective) for f in _fields(CertifyRow)]

    @classmethod
    def read(cls, run_dir: RunDir, objective: Objective = OBJECTIVE) -> list[CertifyRow]:
        """certify.csv of `run_dir` ([] when absent)."""
        return [cls.from_row(cells, objective) for cells in read_rows(run_dir.certify_csv)]

    @staticmethod
    def write(run_dir: RunDir, rows: list[CertifyRow], objective: Objective = OBJECTIVE) -> None:
        """Replace certify.csv at once."""
        write_rows(run_dir.certify_csv, CertifyRow.columns(objective), [row.to_json(objective) for row in rows])


def _number(text: Any, integer: bool) -> Any:
    """A CSV cell as an int or a float; empty → None; unparsable text kept as it is."""
    if text in ("", None):
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text


@dataclass
class RefitSeed(Document):
    """One refit of the certified configuration on train + validation."""

    seed: int | None = None
    """The seed (the same as one of certification's)."""
    epochs: int | None = None
    """Epochs trained (its trial's)."""
    test_accuracy: float | None = None
    """Accuracy of its last epoch's model on the test split."""
    examples: int | None = None
    """Training examples processed."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Its macro-F1 on the test split."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Refit(Document):
    """The certified configuration fitted on train + validation with each seed (summary.json's certification.refit)."""

    seeds: list[RefitSeed] = field(default_factory=list, metadata=_meta(of=RefitSeed))
    """One entry per seed."""
    test_accuracy_mean: float | None = None
    """Mean test accuracy over the seeds: the headline."""
    test_accuracy_std: float | None = None
    """Its standard deviation over the seeds."""
    examples: int | None = None
    """Training examples the refits processed."""
    test_macro_f1_mean: float | None = field(default=None, metadata=_meta(optional=True))
    """Mean test macro-F1 over the seeds."""
    test_macro_f1_std: float | None = field(default=None, metadata=_meta(optional=True))
    """Its standard deviation over the seeds."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class CertifiedConfig(Document):
    """One configuration re-trained over seeds (summary.json's certification.configurations[i])."""

    trial_id: str = ""
    """The trial whose configuration it is."""
    rank: int | None = None
    """1 = the best trial by the objective."""
    params: dict = field(default_factory=dict)
    """Its hyperparameters: {name: value}."""
    epochs: int | None = None
    """Epochs each seed trained."""
    value_mean: float | None = field(default=None, metadata=_meta(key="{metric}_mean"))
    """The objective's mean over seeds (key: e.g. val_accuracy_mean)."""
    value_std: float | None = field(default=None, metadata=_meta(key="{metric}_std"))
    """Its standard deviation over seeds (key: e.g. val_accuracy_std)."""
    test_accuracy_mean: float | None = None
    """Mean test accuracy over seeds."""
    test_accuracy_std: float | None = None
    """Its standard deviation over seeds."""
    test_macro_f1_mean: float | None = field(default=None, metadata=_meta(optional=True))
    """Mean test macro-F1 over seeds."""
    test_macro_f1_std: float | None = field(default=None, metadata=_meta(optional=True))
    """Its standard deviation over seeds."""
    seeds: list[CertifyRow] = field(default_factory=list, metadata=_meta(of=CertifyRow))
    """Each seed's result, as certify.csv holds it."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Ensemble(Document):
    """The exported mean-logit ensemble of the refits (summary.json's certification.ensemble)."""

    seeds: list = field(default_factory=list)
    """The refits' seeds, one network each."""
    test_accuracy: float | None = None
    """Its accuracy on the test split."""
    test_macro_f1: float | None = None
    """Its macro-F1 on the test split."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Certification(Document):
    """summary.json's certification: the top configurations re-trained over seeds (python -m search.certify)."""

    configurations: list[CertifiedConfig] = field(default_factory=list, metadata=_meta(of=CertifiedConfig))
    """The configurations certified, best trial first."""
    exported: str = ""
    """The trial id of the configuration exported: the best mean of the objective."""
    examples: int | None = None
    """Training examples certification processed, the refits' included."""
    wall_s: float | None = None
    """Its wall time in seconds."""
    refit: Refit | None = field(default=None, metadata=_meta(optional=True, of=Refit))
    """The refit on train + validation; absent with --no-refit."""
    ensemble: Ensemble | None = field(default=None, metadata=_meta(optional=True, of=Ensemble))
    """The mean-logit ensemble of the refits, when it was exported (--ensemble)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @property
    def chosen(self) -> CertifiedConfig | None:
        """The exported configuration's entry, or None."""
        return next((c for c in self.configurations if c.trial_id == self.exported), None)


@dataclass
class Certified(Document):
    """The exported model's certification: means and standard deviations over seeds (exported.certified)."""

    value_mean: float | None = field(default=None, metadata=_meta(key="{metric}_mean"))
    """The objective's mean over certification's seeds."""
    value_std: float | None = field(default=None, metadata=_meta(key="{metric}_std"))
    """Its standard deviation."""
    test_accuracy_mean: float | None = None
    """Mean test accuracy over certification's seeds."""
    test_accuracy_std: float | None = None
    """Its standard deviation."""
    refit_test_accuracy_mean: float | None = field(default=None, metadata=_meta(optional=True))
    """Mean test accuracy over the refits on train + validation; absent without a refit."""
    refit_test_accuracy_std: float | None = field(default=None, metadata=_meta(optional=True))
    """Its standard deviation."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Exported(Document):
    """What best_model/ holds (summary.json's exported), as its card.json says."""

    trial_id: str | None = None
    """The trial whose configuration it is."""
    seed: int | None = None
    """The certification seed it was trained with; None for the trial's own weights."""
    epoch: int | None = None
    """The epoch kept."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at that epoch (key: e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """Accuracy on the test split."""
    test_examples: int | None = None
    """Reviews in the test split."""
    classes: list[str] | None = field(default=None, metadata=_meta(optional=True))
    """The class names in the model's output order (absent for runs recorded before classes were named)."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """The unweighted mean over classes of F1 on the test split."""
    test_confusion: list[list[int]] | None = field(default=None, metadata=_meta(optional=True))
    """Test reviews by true class (rows) and predicted class (columns), in `classes` order."""
    certified: Certified | None = field(default=None, metadata=_meta(of=Certified))
    """Its certification's means and standard deviations, or None."""
    refit: bool | None = field(default=None, metadata=_meta(optional=True))
    """Whether it was refit on train + validation; present once certification exported it."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    CARD: ClassVar[tuple[str, ...]] = (
        "trial_id",
        "seed",
        "epoch",
        "value",
        "test_accuracy",
        "test_examples",
        "classes",
        "test_macro_f1",
        "test_confusion",
        "certified",
    )

    @classmethod
    def from_card(cls, card: dict | None, objective: Objective = OBJECTIVE, refit: bool = False) -> Exported | None:
        """summary.json's exported from best_model/card.json (None without a card); `refit`: with the card's refit."""
        if card is None:
            return None
        names = [f for f in _fields(cls) if f.name in cls.CARD + (("refit",) if refit else ())]
        exported = cls.from_json({_key(f, objective): card.get(_key(f, objective)) for f in names}, objective)
        exported.refit = card.get("refit") if refit else None
        return exported


@dataclass
class BestTrial(Document):
    """The search's best trial, the study's best (summary.json's best)."""

    trial_id: str = ""
    """trial_NNNN."""
    number: int | None = None
    """The Optuna trial number."""
    params: dict | None = field(default=None, metadata=_meta(shape=dict))
    """Its hyperparameters: {name: value} (None when not recorded)."""
    preset: str = ""
    """The tutorial preset it is, or empty."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at its best epoch (key: e.g. val_accuracy)."""
    best_epoch: int | None = None
    """Its best epoch."""
    examples_per_s: float | None = None
    """Training examples per second, mean over epochs."""
    tokens_per_s: float | None = None
    """Real training tokens per second, mean over epochs."""
    test_accuracy: float | None = field(default=None, metadata=_meta(optional=True))
    """Test accuracy; present only when its own model is the export."""
    test_examples: int | None = field(default=None, metadata=_meta(optional=True))
    """Reviews in the test split; present with test_accuracy."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class TutorialEntry(Document):
    """One of the tutorial's presets among the trials (summary.json's tutorial[preset])."""

    trial_id: str = ""
    """Its trial."""
    state: str = ""
    """A State value."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective at its best epoch (key: e.g. val_accuracy)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Budget(Document):
    """The search's budget and what it used (summary.json's budget)."""

    trials: int | None = None
    """Trials asked for (--trials)."""
    max_epochs: int | None = None
    """Epochs a trial may train."""
    time_budget_min: float | None = None
    """Minutes of searching, or None."""
    budget_examples: int | None = None
    """Training examples the search may process, or None."""
    examples_used: int | None = None
    """Training examples the search processed, all sessions."""
    search_s: float | None = None
    """Seconds spent searching, all sessions."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Summary(Document):
    """summary.json: the outcome of a finished run (absent while it is in progress)."""

    best: BestTrial | None = field(default=None, metadata=_meta(of=BestTrial))
    """The search's best trial."""
    exported: Exported | None = field(default=None, metadata=_meta(of=Exported))
    """What best_model/ holds, or None."""
    certification: Certification | None = field(default=None, metadata=_meta(of=Certification))
    """The certification over seeds, or None."""
    tutorial: dict[str, TutorialEntry] = field(default_factory=dict, metadata=_meta(of=TutorialEntry))
    """The tutorial's presets among the trials: {preset: entry}."""
    counts: dict = field(default_factory=dict)
    """Trials per state, and "total"."""
    wall_s: float | None = None
    """The run's wall time in seconds, all sessions."""
    budget: Budget | None = field(default=None, metadata=_meta(of=Budget))
    """The search's budget and what it used."""
    finished: bool = True
    """True: the run ended and wrote this summary."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def read(cls, run_dir: RunDir, objective: Objective = OBJECTIVE) -> Summary | None:
        """summary.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.summary_json)
        return None if value is None else cls.from_json(value, objective)

    def write(self, run_dir: RunDir, objective: Objective = OBJECTIVE) -> None:
        """Replace summary.json at once."""
        write_json(run_dir.summary_json, self.to_json(objective))


# ---------------------------------------------------------------- baseline.json


@dataclass
class BaselineModel(Document):
    """One of the tutorial's models trained the tutorial's way (baseline.json's models[preset])."""

    params: dict = field(default_factory=dict)
    """Its hyperparameters: {name: value}."""
    train: dict = field(default_factory=dict)
    """The training fields it used (search.baseline.RECORDED_TRAIN)."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective after the last epoch (key: e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """The last epoch's model's accuracy on the test split."""
    test_macro_f1: float | None = field(default=None, metadata=_meta(optional=True))
    """Its macro-F1 on the test split (absent in older files)."""
    test_examples: int | None = None
    """Reviews in the test split."""
    examples: int | None = None
    """Training examples processed."""
    examples_per_s: float | None = None
    """Training examples per second, mean over epochs."""
    epochs: list = field(default_factory=list)
    """Per epoch: {epoch, the objective's metric, val_loss, train_accuracy, epoch_s}."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class LinearBaseline(Document):
    """baseline.json's linear: TF-IDF word uni+bigrams with logistic regression (search.linear)."""

    c: float | None = field(default=None, metadata=_meta(key="C"))
    """The inverse regularization strength chosen on the validation split."""
    values: dict = field(default_factory=dict)
    """{C (as text): the objective on the validation split}, every C tried."""
    value: float | None = field(default=None, metadata=_meta(key="{metric}"))
    """The objective on the validation split at the chosen C (key: e.g. val_accuracy)."""
    test_accuracy: float | None = None
    """Accuracy on the test split of the chosen C refitted on train + validation."""
    test_macro_f1: float | None = None
    """Its macro-F1 on the test split."""
    test_confusion: list | None = None
    """Its confusion matrix on the test split: rows true class, columns predicted."""
    test_examples: int | None = None
    """Reviews in the test split."""
    features: int | None = None
    """Uni- and bigrams in the refitted vocabulary."""
    fit_s: float | None = None
    """Wall seconds of every fit: the C search and the refit."""
    predict_per_s: float | None = None
    """Test reviews classified per second, from raw text (vectorizing included)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""


@dataclass
class Baseline(Document):
    """baseline.json: the tutorial's two models trained as the tutorial trains them, and the linear
    baseline (python -m search.baseline)."""

    models: dict[str, BaselineModel] = field(default_factory=dict, metadata=_meta(of=BaselineModel))
    """{preset: model}."""
    examples: int | None = None
    """Training examples both processed."""
    data_fingerprint: str | None = field(default=None, metadata=_meta(optional=True))
    """The fingerprint of the data they were trained on (absent in older files)."""
    wall_s: float | None = None
    """Wall time in seconds."""
    epochs: int | None = None
    """Epochs each model trained."""
    linear: LinearBaseline | None = field(default=None, metadata=_meta(optional=True, of=LinearBaseline))
    """The linear baseline (absent in older files)."""
    extra: dict = field(default_factory=dict, metadata=EXTRA)
    """Keys this version does not know, kept as read."""

    @classmethod
    def read(cls, run_dir: RunDir, objective: Objective = OBJECTIVE) -> Baseline | None:
        """baseline.json of `run_dir`, or None when absent; ValueError when it is not a JSON object."""
        value = read_json(run_dir.baseline_json)
        return None if value is None else cls.from_json(value, objective)

    def write(self, run_dir: RunDir, objective: Objective = OBJECTIVE) -> None:
        """Replace baseline.json at once."""
        write_json(run_dir.baseline_json, self.to_json(objective))
