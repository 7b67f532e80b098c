"""runfiles.documents: the committed reference runs' documents round-trip, partial ones read with
defaults, and no module of search/ or reports/ spells a run.json or summary.json key itself."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from runfiles.documents import Baseline, CertifyRow, RunFacts, Summary
from runfiles.io import read_rows
from runfiles.layout import OBJECTIVE, Objective, RunDir

ROOT = Path(__file__).resolve().parent.parent
RECORDED = [ROOT / "tests" / "data" / "recorded" / "reference", ROOT / "tests" / "data" / "recorded" / "reference-seed1"]
"""Runs the driver wrote before classes, macro-F1 and the linear part were recorded."""
REFERENCES = [*RECORDED, ROOT / "docs" / "reference", ROOT / "docs" / "reference-seed1"]
"""Those, and the reference runs of docs/results.md (docs/reference*): every document of each reads and writes back unchanged."""

# Keys of run.json and summary.json that name nothing else in search/ or reports/ (keys such as
# "best", "lstm", "versions", "certified" or "tutorial" are also table columns, figure labels,
# card.json keys or bench.py's pipelines).
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


def test_objective_names_the_metric_keys():
    loss = Objective("val_loss", "min")
    summary = Summary.from_json({"best": {"trial_id": "trial_0001", "val_loss": 0.3}}, loss)
    assert summary.best.value == 0.3 and summary.best.to_json(loss)["val_loss"] == 0.3
    assert CertifyRow.columns(loss)[5] == "val_loss"
    facts = RunFacts.from_json({"objective": {"metric": "val_loss", "mode": "MIN"}})
    assert facts.ranking == loss


def _document_keys_in(path: Path) -> list[str]:
    """String constants used as a subscript, a .get() key or a dict display's key."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        keys = []
        if isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
            keys = [node.args[0]]
        elif isinstance(node, ast.Dict):
            keys = node.keys
        for key in keys:
            if isinstance(key, ast.Constant) and key.value in DOCUMENT_KEYS:
                found.append(f"{path.relative_to(ROOT)}:{key.lineno}: {key.value!r}")
    return found


def test_document_keys_are_spelled_only_in_runfiles_documents():
    sources = sorted((ROOT / "search").rglob("*.py")) + sorted((ROOT / "reports").rglob("*.py"))
    found = [hit for path in sources for hit in _document_keys_in(path)]
    assert not found, "read or write run.json and summary.json through runfiles.documents:\n" + "\n".join(found)
