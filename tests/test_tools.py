"""The tools' room: each tool is the command its docstring and tools/__init__.py name, and the table
benchmark measures in child processes of its own (no timing assertions: it is a benchmark)."""

import importlib
import pkgutil

import pytest

import tools
from tools import tablebench

from conftest import SAMPLE

TOOLS = sorted(module.name for module in pkgutil.iter_modules(tools.__path__))


def test_the_tools_room_lists_every_tool():
    assert TOOLS == ["bench", "regimes", "scale", "splitcheck", "stepmemory", "tablebench"]
    assert [name for name in TOOLS if f"python -m tools.{name} " not in tools.__doc__] == []


@pytest.mark.parametrize("name", TOOLS)
def test_each_tool_runs_as_the_command_its_docstring_names(name, capsys):
    module = importlib.import_module(f"tools.{name}")
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m tools.{name} ")
    assert f"\n    python -m tools.{name} " in module.__doc__


def test_the_table_benchmark_reads_each_format_in_a_child_process(tmp_path, capsys):
    assert tablebench.main(["--rows", "50", "--archive", str(SAMPLE), "--stages", "read", "--keep", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-4] == "50 rows; csv 0 MiB, parquet 0 MiB"
    for line, name in zip(printed[-3:-1], ("csv", "parquet")):
        assert line.split()[:2] == [name, "read"] and line.endswith("MiB peak   {'train': 40, 'test': 10}")
    assert printed[-1].startswith("csv/parquet read: ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["table.csv", "table.parquet"]
