"""The run directory's contract and the command-line helpers, shared by `search/`, `reports/` and the tests.

Standard library only (and `models.config`, which is too), so the report and the tests read a
run directory without importing TensorFlow, Ray or pandas:

- `runfiles.layout`: the files of a run directory, its table columns, trial states, the
  objective, the search-space parameter and the one ranking rule;
- `runfiles.io`: atomic readers and writers of its JSON documents and CSV tables;
- `runfiles.documents`: run.json, summary.json, baseline.json and certify.csv as typed documents;
- `runfiles.study`: study.db read without writing it (Optuna imported only when a study is loaded);
- `runfiles.cli`: command lines derived from typed configs, and one-line errors.
"""
