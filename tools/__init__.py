"""Tools beside the product: benchmarks and measurements of the harness, and writers of datasets for it.

Each module is a command of its own (its docstring says what it does and how to run it):

    python -m tools.bench        the trial pipeline against the tutorial's; a finished search's training share (--overhead)
    python -m tools.scale        the search driver at scale, with trials that only sleep
    python -m tools.tpecost      Optuna's TPE alone: milliseconds per suggestion as the study grows
    python -m tools.stepmemory   one training and one evaluation step's memory against search.memory's estimate
    python -m tools.tablebench   reading and preparing a large table, as CSV and as Parquet
    python -m tools.splitcheck   how much of its movies validation shares with training
    python -m tools.regimes      tasks written from the aclImdb archive as a folder per class
    python -m tools.vectorsbench reading a large vectors file, with gensim's full load and streamed

A tool may import every room of the product (`search`, `models`, `runfiles`, `reports`); no room of
the product imports a tool (tests/test_imports.py). What the product runs itself stays in `search/`:
the serving benchmark at the end of a search, and its command `python -m search.serving RUN_DIR`.
"""
