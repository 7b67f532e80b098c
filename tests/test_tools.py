"""The tools' room: each tool is the command its docstring and tools/__init__.py name, and the table
and vectors benchmarks measure in child processes of their own (no timing assertions: they are benchmarks)."""

import importlib
import pkgutil

import pytest

import tools
from tools import tablebench, tpecost, vectorsbench

from conftest import SAMPLE

TOOLS = sorted(module.name for module in pkgutil.iter_modules(tools.__path__))


def test_the_tools_room_lists_every_tool():
    assert TOOLS == ["bench", "regimes", "scale", "splitcheck", "stepmemory", "tablebench", "tpecost", "vectorsbench"]
    assert [name for name in TOOLS if f"python -m tools.{name} " not in tools.__doc__] == []


@pytest.mark.parametrize("name", TOOLS)
def test_each_tool_runs_as_the_command_its_docstring_names(name, capsys):
    module = importlib.import_module(f"tools.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    usage, description = capsys.readouterr().out.split("\n\n")[:2]
    assert usage.startswith(f"usage: python -m tools.{name} ")
    assert description.endswith("."), f"--help's description is the docstring's whole first paragraph: {description!r}"
    assert f"\n    python -m tools.{name} " in module.__doc__


def test_the_table_benchmark_reads_each_format_in_a_child_process(tmp_path, capsys):
    assert tablebench.main(["--rows", "50", "--archive", str(SAMPLE), "--stages", "read", "--keep", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-4] == "50 rows; csv 0 MiB, parquet 0 MiB"
    for line, name in zip(printed[-3:-1], ("csv", "parquet")):
        assert line.split()[:2] == [name, "read"] and line.endswith("MiB peak   {'train': 40, 'test': 10}")
    assert printed[-1].startswith("csv/parquet read: ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["table.csv", "table.parquet"]


def test_the_vectors_benchmark_reads_both_ways_in_child_processes(tmp_path, capsys):
    argv = ["--words", "3000", "--dim", "10", "--vocabulary", "500", "--keep", str(tmp_path)]
    assert vectorsbench.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-5].startswith("3,000 words x 10 (")
    for line, name in zip(printed[-4:-2], ("gensim", "stream")):
        assert line.split()[0] == name and "MiB peak" in line and line.endswith("coverage 94.8%")
    assert printed[-2] == "same matrix: True" and printed[-1].startswith("gensim / stream: ")
    assert [path.name for path in tmp_path.iterdir()] == ["vectors-3000x10.vec"]


def test_the_tpe_cost_times_suggestions_on_studies_of_each_size(capsys):
    assert tpecost.main(["--trials", "12", "3", "--asks", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ms ")[0].split(":")[0] for line in lines] == ["[tpe] 3 trials", "[tpe] 12 trials"]
    assert all(float(line.split(": ")[1].split(" ms")[0]) > 0 for line in lines)


def test_the_tpe_cost_refuses_a_study_of_no_trials(capsys):
    assert tpecost.main(["--trials", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --trials 0 is invalid: expected an integer >= 1"
    assert tpecost.main(["--asks", "few"]) == 2
    assert capsys.readouterr().err == "error: python -m tools.tpecost: argument --asks: invalid int value: 'few'; see --help\n"
