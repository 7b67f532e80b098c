"""Every command in README.md and docs/*.md runs as written, and README is a door to the docs.

    python -m pytest -q tests/test_docs.py

Commands are read from the pages' ```bash blocks (a line each, a trailing `\\` continuing it; `&&`,
`||`, `;` and `|` separating commands; a quoted argument that holds a `python -m` command, as in
`ray exec ... '...'`, read as one too) and from inline code that starts with `python -m` or
`pip install`, where usage notation is read as usage: `[--top 3]` is taken with its contents,
`[...]` left out, and `{a,b}` taken as a and as b.

- `python -m MODULE ARGS` of this project: MODULE's own `main` is called with ARGS and stopped
  where its parser returns (argparse's parse methods raise there instead of returning, so nothing
  is read, trained or written): its parser accepts ARGS, or the test names the page, the line
  and the parser's own error. A `main()` that takes no arguments is given none.
- The cheap ones also run for real, as written, in a folder laid out as the pages assume (`DIR`,
  `runs/smoke`, ... are a copy of the sample's real run, `reviews.txt` holds two reviews):
  `search.predict`, `reports` and every `--help`, once each where commands differ only in which
  of those names they give the run; and the pages' Python blocks.
- `python -m MODULE` of another package: MODULE is installed; `python -c CODE`: CODE compiles and
  its imports are installed.
- Another program: a console script of this environment (`ray` and `mlflow` also parse their
  arguments through their own click commands), a script of this repository, or a program of
  ELSEWHERE; `pip install -e '.[EXTRAS]'` names extras that pyproject.toml declares.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import inspect
import re
import shlex
import shutil
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from runfiles.cli import UsageError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = tuple(p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
"""The project's own top-level packages, as pyproject.toml installs them."""
MAX_README_LINES = 300
"""README is a door: what it is, how to run it, where to read on; the rest is in docs/."""

RUN_FOR_REAL = ("search.predict", "reports")
"""Modules whose commands in the pages run for real on the sample's run (seconds each)."""
RUN_NAMES = ("DIR", "RUN_DIR", "RUN_A", "RUN_B", "runs/smoke", "runs/smoke-seed1", "runs/gpu4", "runs/reference")
SECOND_RUN_NAMES = ("RUN_B", "runs/smoke-seed1")
"""The run directories the pages' runnable commands name; each is the sample's real run here."""
REVIEWS = "A moving, beautifully shot film.\nTwo hours I won't get back.\n"
"""reviews.txt, as the pages' `search.predict --file reviews.txt` reads it."""
CLICK_COMMANDS = {"ray": "ray.scripts.scripts:cli", "mlflow": "mlflow.cli:cli"}
"""Programs whose arguments are parsed by their own click command (module:attribute)."""
ELSEWHERE = {"kubectl": "Kubernetes' client, on the user's machine"}
"""Programs the pages run that this environment does not install."""
SHELL_BUILTINS = ("export", "cd", "source")
REDIRECTS = (">", ">>", "<", "2>")
PYTHON = re.compile(r"python(3(\.\d+)?)?$")


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of a page: where it is written and its words, as the shell would split them."""

    page: str
    """The page's path relative to the repository, e.g. `docs/data.md`."""
    line: int
    """The line the command starts on, from 1."""
    words: tuple[str, ...]
    """The program and its arguments, environment assignments left out."""

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {shlex.join(self.words)}"

    @property
    def python_module(self) -> tuple[str, list[str]] | None:
        """(MODULE, ARGS) of `python -m MODULE ARGS`; None for any other command."""
        if len(self.words) > 2 and PYTHON.match(Path(self.words[0]).name) and self.words[1] == "-m":
            return self.words[2], list(self.words[3:])
        return None


# -- reading the pages ------------------------------------------------------------------------


def blocks(text: str) -> tuple[list[tuple[str, int, str]], str]:
    """The fenced blocks of a page, (language, first line, code), and the page with them blanked."""
    found, prose, current = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            if current is None:
                current = (line.strip()[3:], number + 1, [])
            else:
                found.append((current[0], current[1], textwrap.dedent("\n".join(current[2]))))
                current = None
            prose.append("")
        elif current is not None:
            current[2].append(line)
            prose.append("")
        else:
            prose.append(line)
    return found, "\n".join(prose)


def shell_commands(page: str, first: int, code: str) -> list[Command]:
    """The commands of a bash block: one per line (a trailing backslash continues it)."""
    commands, number = [], first
    for logical in re.split(r"(?<!\\)\n", code):
        commands += split_line(page, number, logical.replace("\\\n", " "))
        number += logical.count("\n") + 1
    return commands


def split_line(page: str, number: int, line: str) -> list[Command]:
    """The commands of one shell line, and of any quoted argument that holds a python command."""
    commands = []
    for segment in shell_segments(line):
        words = shlex.split(segment)
        words = [w for i, w in enumerate(words) if w not in REDIRECTS and (i == 0 or words[i - 1] not in REDIRECTS)]
        while words and re.fullmatch(r"[A-Za-z_]+=.*", words[0]):
            words.pop(0)
        commands += [Command(page, number, tuple(words[i:])) for i in range(len(words)) if i == 0 or _runs_python(words, i)]
        commands += [c for w in words if " " in w and re.search(r"python3? -m ", w) for c in split_line(page, number, w)]
    return commands


def shell_segments(line: str) -> list[str]:
    """A shell line cut at its operators (`&&`, `||`, `;`, `|`, `&`) outside quotes, its comment left out."""
    segments, start, quote = [], 0, None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            line = line[:index]
            break
        elif char in ";&|":
            segments.append(line[start:index])
            start = index + 1
    return [s for s in [*segments, line[start:]] if s.strip()]


def _runs_python(words: list[str], index: int) -> bool:
    """Whether a command's words from index on are a `python -m` command (as `ray job submit ... -- python -m ...`)."""
    return bool(PYTHON.match(Path(words[index]).name)) and words[index + 1 : index + 2] == ["-m"]


def usages(span: str) -> list[str]:
    """An inline command written in usage notation, as the commands it stands for."""
    span = re.sub(r"\s*\[\.\.\.\]", "", " ".join(span.split()))
    span = re.sub(r"(?<= )\[([^\[\]]*)\]", r"\1", span)
    choice = re.search(r"(?<= )\{([^{}]*,[^{}]*)\}", span)
    if choice is None:
        return [span]
    return [u for c in choice.group(1).split(",") for u in usages(span[: choice.start()] + c + span[choice.end() :])]


def page_commands(path: Path) -> tuple[list[Command], list[tuple[str, int, str]]]:
    """Every command of a page (bash blocks, then inline code) and its Python blocks."""
    page = str(path.relative_to(ROOT))
    found, prose = blocks(path.read_text())
    commands = [c for language, first, code in found if language in ("bash", "sh") for c in shell_commands(page, first, code)]
    for match in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)*)`", prose):
        span = " ".join(match.group(1).split())
        if re.match(r"(\S*/)?(python3? -m |pip install )", span):
            line = prose.count("\n", 0, match.start()) + 1
            commands += [c for usage in usages(span) for c in split_line(page, line, usage)]
    return commands, [(page, first, code) for language, first, code in found if language == "python"]


COMMANDS = [c for path in PAGES for c in page_commands(path)[0]]
PYTHON_BLOCKS = [b for path in PAGES for b in page_commands(path)[1]]


# -- what a command needs ---------------------------------------------------------------------


class Parsed(BaseException):
    """Raised where a command's parser returns, so that nothing after parsing runs."""


class Refused(BaseException):
    """Raised where a command's parser refuses its arguments, with the parser's message."""


def stop_after_parsing(monkeypatch, capsys) -> None:
    """Make argparse's parse methods raise Parsed (or Refused) instead of returning to the command,
    and take flags only as spelled in full."""

    def stopping(parse):
        def parse_then_stop(parser, *args, **kwargs):
            parser.allow_abbrev = False  # a flag the pages spell must be the flag, not a prefix of it
            try:
                parse(parser, *args, **kwargs)
            except UsageError as error:
                raise Refused(str(error)) from None
            except SystemExit as error:  # argparse's --help (0) or its own error (2)
                if error.code:
                    raise Refused(capsys.readouterr().err.strip().splitlines()[-1]) from None
            raise Parsed

        return parse_then_stop

    for name in ("parse_args", "parse_intermixed_args"):
        monkeypatch.setattr(argparse.ArgumentParser, name, stopping(getattr(argparse.ArgumentParser, name)))


def entry_point(module: str):
    """The `main` that `python -m module` runs; fails the test where the module does not exist."""
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"no module {module}"
    if spec.submodule_search_locations is not None:
        assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} is a package without __main__"
        module = f"{module}.__main__"
    main = getattr(importlib.import_module(module), "main", None)
    assert main is not None, f"{module} has no main()"
    return main


def accepted(command: Command, capsys) -> None:
    """Fail unless the project's module exists and its own parser accepts the command's arguments
    (with the parsers stopped after parsing: `stop_after_parsing`)."""
    module, args = command.python_module
    try:
        main = entry_point(module)
    except AssertionError as missing:
        pytest.fail(f"{command}: {missing}")
    if not inspect.signature(main).parameters:
        assert not args, f"{command}: python -m {module} takes no arguments"
        return
    try:
        main(args)
    except Parsed:
        return
    except Refused as refused:
        pytest.fail(f"{command}: {refused}")
    pytest.fail(f"{command}: python -m {module} returned without parsing: {capsys.readouterr().err.strip()}")


def click_command(program: str):
    module, attribute = CLICK_COMMANDS[program].split(":")
    return getattr(importlib.import_module(module), attribute)


def click_accepts(program: str, words: list[str]) -> None:
    """Parse a click program's arguments as it would, through its groups to the command's options."""
    import click

    command = click_command(program)
    while isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), words[0]) if words else None
        assert sub is not None, f"{program} has no command {words[:1]}"
        command, words = sub, words[1:]
    try:
        command.make_context(command.name, list(words))
    except click.UsageError as error:
        pytest.fail(f"{program}: {error.format_message()}")


def python_code_imports(code: str) -> None:
    """A `python -c` program compiles, and the modules it imports are installed."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        for name in names:
            assert importlib.util.find_spec(name.split(".")[0]) is not None, f"python -c imports {name}, not installed"


def other_program(command: Command) -> None:
    """A command that is not `python -m` names a program this environment (or ELSEWHERE) has."""
    program, args = command.words[0], list(command.words[1:])
    name = Path(program).name
    if PYTHON.match(name):
        assert args[:1] == ["-c"], f"{command}: python without -m or -c"
        python_code_imports(args[1])
    elif name == "pip":
        extras = [e for a in args for e in re.findall(r"\.\[([^\]]*)\]", a) for e in e.split(",")]
        missing = set(extras) - set(PYPROJECT["project"]["optional-dependencies"])
        assert args[:1] == ["install"] and not missing, f"{command}: pyproject.toml declares no extra {sorted(missing)}"
    elif name == "bash" or program.startswith("./"):
        script = ROOT / (args[0] if name == "bash" else program)
        assert script.is_file(), f"{command}: {script.relative_to(ROOT)} is not in the repository"
    elif name not in SHELL_BUILTINS and name not in ELSEWHERE:
        assert (Path(sys.executable).parent / name).exists(), f"{command}: {name} is not installed with the project"
        if name in CLICK_COMMANDS:
            click_accepts(name, args)


# -- running the cheap ones -------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_for_docs(real_run, tmp_path_factory) -> Path:
    """A copy of the real run that the pages' commands may write their reports into."""
    return Path(shutil.copytree(real_run, tmp_path_factory.mktemp("docs") / "run", ignore=shutil.ignore_patterns("tune")))


def lay_out(folder: Path, run: Path) -> Path:
    """A working folder laid out as the pages assume: their run directories (run, and a copy of it
    for the second run a comparison names, since one run named twice is refused) and reviews.txt."""
    second = run.with_name(f"{run.name}-copy")
    if not second.exists():
        shutil.copytree(run, second)
    for name in RUN_NAMES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(second if name in SECOND_RUN_NAMES else run)
    (folder / "reviews.txt").write_text(REVIEWS)
    return folder


def runs_for_real(command: Command) -> bool:
    module, args = command.python_module or (None, [])
    return module is not None and (module in RUN_FOR_REAL or "--help" in args)


def distinct(commands: list[Command]) -> list[Command]:
    """The commands that differ in more than which of RUN_NAMES they name (all the same run here)."""
    seen: dict[tuple, Command] = {}
    for command in commands:
        seen.setdefault(tuple("RUN" if w in RUN_NAMES else w for w in command.words), command)
    return list(seen.values())


def ran(command: Command, capsys) -> None:
    """Run a project command in this process (in the current folder); fail unless it exits 0."""
    module, args = command.python_module
    try:
        code = entry_point(module)(args)
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    assert code == 0, f"{command}: exit {code}: {err.strip()}"
    if "--help" in args:
        assert out.startswith("usage: python -m"), f"{command}: {out[:200]}"
    elif module == "search.predict":
        assert len(out.strip().splitlines()) == 2, f"{command}: {out}"


def failures(check, items) -> list[str]:
    """What `check` failed on, item by item, so that one test names every command that fails."""
    found = []
    for item in items:
        try:
            check(item)
        except (AssertionError, pytest.fail.Exception) as failure:
            found.append(str(failure).splitlines()[0])
    return found


# -- the tests --------------------------------------------------------------------------------


def test_the_pages_hold_the_commands_they_are_known_to_hold():
    modules = {c.python_module[0] for c in COMMANDS if c.python_module}
    assert {"search.run", "search.predict", "search.certify", "search.baseline", "search.serving", "reports"} <= modules
    assert any("--tmux" in c.words for c in COMMANDS) and any(c.words[0] == "ray" and "job" in c.words for c in COMMANDS)
    assert PYTHON_BLOCKS, "the pages' Python blocks were not found"


def test_every_python_module_command_is_accepted_by_its_parser(monkeypatch, capsys):
    def check(command: Command) -> None:
        module, _ = command.python_module
        if module.split(".")[0] in PACKAGES:
            accepted(command, capsys)
        else:
            assert importlib.util.find_spec(module) is not None, f"{command}: no module {module}"

    stop_after_parsing(monkeypatch, capsys)
    failed = failures(check, [c for c in COMMANDS if c.python_module])
    assert not failed, "\n".join(failed)


def test_every_other_command_names_what_is_installed():
    failed = failures(other_program, [c for c in COMMANDS if not c.python_module])
    assert not failed, "\n".join(failed)


def test_the_cheap_commands_run_as_written(run_for_docs, tmp_path, monkeypatch, capsys):
    def check(numbered: tuple[int, Command]) -> None:
        monkeypatch.chdir(lay_out(tmp_path / str(numbered[0]), run_for_docs))
        ran(numbered[1], capsys)

    failed = failures(check, list(enumerate(distinct([c for c in COMMANDS if runs_for_real(c)]))))
    assert not failed, "\n".join(failed)


def test_every_python_block_runs_as_written(run_for_docs, tmp_path, monkeypatch):
    monkeypatch.chdir(lay_out(tmp_path, run_for_docs))
    for page, line, code in PYTHON_BLOCKS:
        exec(compile(code, f"{page}:{line}", "exec"), {})


def test_a_renamed_flag_or_module_fails_the_check(monkeypatch, capsys):
    stop_after_parsing(monkeypatch, capsys)
    for flag in ("--budget-exmples", "--budget-example"):  # renamed, or a prefix of the flag
        with pytest.raises(pytest.fail.Exception, match=f"unrecognized arguments: {flag} 5"):
            accepted(Command("README.md", 1, ("python", "-m", "search.run", flag, "5")), capsys)
    with pytest.raises(pytest.fail.Exception, match="invalid int value: 'N'"):
        accepted(Command("README.md", 1, ("python", "-m", "search.serving", "DIR", "--threads", "N")), capsys)
    with pytest.raises(pytest.fail.Exception, match=r"no module search\.runs"):
        accepted(Command("README.md", 1, ("python", "-m", "search.runs")), capsys)
    with pytest.raises(AssertionError, match="ray has no command"):
        other_program(Command("docs/cluster.md", 1, ("ray", "rsync_down", "cluster.yaml")))
    with pytest.raises(pytest.fail.Exception, match="No such option '--tmu'"):
        other_program(Command("docs/cluster.md", 1, ("ray", "exec", "cluster.yaml", "--tmu", "ls")))


def test_usage_notation_stands_for_each_command_it_names():
    assert usages("python -m search.certify DIR [--top 3] [...]") == ["python -m search.certify DIR --top 3"]
    assert usages("python -m tools.regimes {small,short} --out D") == [
        "python -m tools.regimes small --out D",
        "python -m tools.regimes short --out D",
    ]


def test_readme_is_a_door_to_every_page():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, f"README does not link docs/{page.name}"
    quick_start = next(code for language, _, code in blocks(text)[0] if language == "bash").splitlines()
    assert len(quick_start) == 2, "the quick start is two commands: set up and search, then the tests"
    first = {c.words[0].split("/")[-1]: c for c in split_line("README.md", 1, quick_start[0])}
    assert "pip" in first and first["python"].python_module[0] == "search.run"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start[1] in ci, f".ci/run does not run README's test command {quick_start[1]!r}"


def anchors(path: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them."""
    headings = re.findall(r"^#+ (.+)$", blocks(path.read_text())[1], re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def link_resolves(link: tuple[Path, str]) -> None:
    """A relative link of a page names a file that exists, and a heading of it where it names one."""
    path, target = link
    file, _, anchor = target.partition("#")
    linked = (path.parent / file).resolve() if file else path
    assert linked.exists(), f"{path.relative_to(ROOT)} links {target}: no such file"
    if anchor:
        assert anchor in anchors(linked), f"{path.relative_to(ROOT)} links {target}: {linked.name} has no heading #{anchor}"


def test_every_link_between_the_pages_resolves():
    links = [(p, t) for p in PAGES for t in re.findall(r"\]\(([^)\s]+)\)", blocks(p.read_text())[1])]
    failed = failures(link_resolves, [(p, t) for p, t in links if not re.match(r"[a-z]+:", t)])
    assert not failed, "\n".join(failed)
