"""runfiles.documents: the committed reference runs' documents round-trip, typed all the way down,
partial ones read with defaults, and no module of search/ or reports/ spells a key of run.json (its
data facts too), summary.json, card.json or benchmark.json itself."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from runfiles.documents import Baseline, CertifyRow, DataFacts, RunFacts, Summary
from runfiles.io import read_rows
from runfiles.layout import OBJECTIVE, Objective, RunDir

ROOT = Path(__file__).resolve().parent.parent
RECORDED = [ROOT / "tests" / "data" / "recorded" / "reference", ROOT / "tests" / "data" / "recorded" / "reference-seed1"]
"""Runs the driver wrote before classes, macro-F1 and the linear part were recorded."""
REFERENCES = [*RECORDED, ROOT / "docs" / "reference", ROOT / "docs" / "reference-seed1"]
"""Those, and the reference runs of docs/results.md (docs/reference*): every document of each reads and writes back unchanged."""

# Keys of run.json (its data facts, resources and memory too), summary.json, card.json and
# benchmark.json that name nothing else in search/ or reports/ (keys such as "best", "lstm",
# "versions", "classes", "sizes" or "tutorial" are also table columns, figure labels, split names or
# bench.py's pipelines).
DOCUMENT_KEYS = {
    "sessions",
    "configs",
    "presets",
    "start_point",
    "resources",
    "objective",
    "nodes",
    "certification",
    "exported",
    "configurations",
    "finished",
    "examples_used",
    "search_s",
    "refit_test_accuracy_mean",
    "refit_test_accuracy_std",
    "data_fingerprint",
    f"{OBJECTIVE.metric}_mean",
    f"{OBJECTIVE.metric}_std",
    # the data facts (runfiles.documents.DataFacts)
    "duplicates",
    "test_in_training",
    "val_in_train",
    "class_counts",
    "empty_texts",
    "wordless_characters",
    "vocabulary_size",
    "val_split",
    "test_split",
    "reviews_with_replaced_bytes",
    "hidden_files_skipped",
    "folders_skipped",
    "unlabelled_splits",
    "dropped_missing",
    "dropped_missing_texts",
    "header_rows_dropped",
    "labels_stripped",
    "labels_case_folded",
    # run.json's resources and memory, card.json and benchmark.json
    "trial_memory_mb",
    "trial_mb",
    "training_mb",
    "widest_tokens",
    "reviews_longer",
    "test_confusion",
    "throughput_per_s",
    "size_bytes",
    "load_s",
    "test_texts",
}


@pytest.mark.parametrize("run", REFERENCES, ids=lambda p: p.name)
def test_reference_documents_round_trip(run: Path):
    files = RunDir(run)
    for kind, path in ((RunFacts, files.run_json), (Summary, files.summary_json), (Baseline, files.baseline_json)):
        if not path.is_file():
            continue
        raw = json.loads(path.read_text(encoding="utf-8"))
        document = kind.from_json(raw)
        assert json.dumps(document.to_json()) == json.dumps(raw), path.name  # same keys, order and values
        assert document.extra == {}, f"{path.name}: keys the documents do not declare: {sorted(document.extra)}"
        if kind is RunFacts:  # and its parts, typed all the way down
            parts = {"data": document.data, "resources": document.resources, "lstm": document.lstm}
            assert [name for name, part in parts.items() if part.extra] == [], "keys a part does not declare"
    rows = read_rows(files.certify_csv)
    typed = CertifyRow.read(files)
    assert CertifyRow.columns()[: len(rows[0])] == list(rows[0])  # columns added since come last
    assert [{k: str(v) for k, v in row.to_json().items()} for row in typed] == rows


def test_reference_documents_are_typed():
    facts, summary = RunFacts.read(RunDir(RECORDED[0])), Summary.read(RunDir(RECORDED[0]))
    assert facts.ranking == OBJECTIVE and facts.params and facts.sessions[0].wall_s > 0
    assert summary.best.value == summary.best.to_json()[OBJECTIVE.metric]
    assert summary.certification.chosen.trial_id == summary.certification.exported
    assert summary.certification.refit.seeds and summary.exported.refit is True
    assert summary.budget.examples_used == facts.sessions[-1].examples_used
    assert facts.data.fingerprint == "f850d3a814209938" and facts.data.sizes["test"] == 25000
    assert facts.data.duplicates is None and facts.data.majority_floor() is None  # recorded before they were counted
    assert facts.lstm.trials == "auto" and facts.resources.concurrency == 2 and facts.resources.trial_memory_mb is None
    reference = RunFacts.read(RunDir(REFERENCES[2])).data
    assert reference.test_copies == 123 and reference.majority_floor() == ("neg", 0.5)
    assert reference.copies_note() == " (123 of them copy a training review)"


def test_partial_documents_read_with_defaults():
    facts = RunFacts.from_json({"command": "python -m search.run", "sessions": [{"started_at": "t"}], "new_key": 1})
    assert facts.configs == {} and facts.start_point is None and facts.nodes is None and facts.study == "search"
    assert facts.sessions[0].search_s is None and facts.search_s() == 0.0 and facts.wall_s() == 0.0
    assert facts.ranking == OBJECTIVE and facts.objective is None
    assert facts.extra == {"new_key": 1} and facts.to_json()["new_key"] == 1  # unknown keys are kept
    assert "nodes" not in facts.to_json() and "search_s" not in facts.to_json()["sessions"][0]
    summary = Summary.from_json({"best": "not an object", "certification": {"configurations": "nor a list"}})
    assert summary.best is None and summary.certification.configurations == [] and summary.finished is True
    assert RunFacts.from_json(None).space == [] and Baseline.from_json([]).models == {}


def test_a_document_read_is_written_back_as_read():
    raw = {"sizes": {"test": 4}, "source": "data.csv", "class_counts": {"test": {"a": 3, "b": 1}}}
    facts = DataFacts.from_json(raw)
    assert json.dumps(facts.to_json()) == json.dumps(raw)  # its keys in their order, no default added
    facts.labels_stripped = 2
    assert list(facts.to_json()) == [*raw, "labels_stripped"]  # what was set since comes after
    made = DataFacts(source="data.csv").to_json()  # made here: every field, but optional ones while None
    assert made["val_split"] == "review by review" and made["duplicates"] is None and "folders_skipped" not in made


def test_objective_names_the_metric_keys():
    loss = Objective("val_loss", "min")
    summary = Summary.from_json({"best": {"trial_id": "trial_0001", "val_loss": 0.3}}, loss)
    assert summary.best.value == 0.3 and summary.best.to_json(loss)["val_loss"] == 0.3
    assert CertifyRow.columns(loss)[5] == "val_loss"
    facts = RunFacts.from_json({"objective": {"metric": "val_loss", "mode": "MIN"}})
    assert facts.ranking == loss


def _document_keys_in(path: Path) -> list[str]:
    """String constants used as a subscript, a .get() key or a dict display's key, and those held in
    a tuple, list or set display that a loop or comprehension iterates or an `in` test looks into
    (keys looked up one after another)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        keys = []
        if isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
            keys = [node.args[0]]
        elif isinstance(node, ast.Dict):
            keys = node.keys
        elif isinstance(node, ast.For | ast.comprehension):
            keys = _held(node.iter)
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            keys = _held(node.comparators[0])
        for key in keys:
            if isinstance(key, ast.Constant) and key.value in DOCUMENT_KEYS:
                found.append(f"{path.relative_to(ROOT)}:{key.lineno}: {key.value!r}")
    return found


def _held(node: ast.expr) -> list[ast.expr]:
    """The string constants of a tuple, list or set display, nested ones included; [] for anything else."""
    if not isinstance(node, ast.Tuple | ast.List | ast.Set):
        return []
    return [n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_document_keys_are_spelled_only_in_runfiles_documents():
    sources = sorted((ROOT / "search").rglob("*.py")) + sorted((ROOT / "reports").rglob("*.py"))
    found = [hit for path in sources for hit in _document_keys_in(path)]
    assert not found, "read or write run.json and summary.json through runfiles.documents:\n" + "\n".join(found)


def test_a_resumed_run_says_which_session_it_is_and_what_it_searched():
    from runfiles.documents import SessionRecord

    first = SessionRecord(started_at="2026-12-07T12:42:00+00:00", command="python -m search.run", search_s=25.4)
    facts = RunFacts(started_at=first.started_at, sessions=[first])
    assert facts.resumed_text() == ""  # a run's first session resumes nothing
    facts.sessions.append(SessionRecord(started_at="2026-12-07T13:00:00+00:00", command="python -m search.run --resume"))
    assert facts.resumed_text() == "resumed: session 2; the run began 2026-12-07T12:42:00+00:00, searched 25 s"
    facts.sessions[1].search_s = 830.0
    assert facts.resumed_text().endswith("session 2; the run began 2026-12-07T12:42:00+00:00, searched 14.3 min")
