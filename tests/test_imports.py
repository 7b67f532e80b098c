"""The house's import graph, read from the source: no cycle, and each room imports only what it may;
and the product's rooms hold the product's commands, the tools' commands being in tools/.

Every import counts, at the top of a module or inside a function (those run too, only later);
an import under `if TYPE_CHECKING:` never runs and is left out.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "runfiles", "search", "reports", "tools")
ALLOWED = {
    "models": {"models"},
    "runfiles": {"runfiles", "models"},
    "reports": {"reports", "runfiles", "models"},
    "search": {"search", "reports", "runfiles", "models"},
    "tools": set(PACKAGES),
}
"""The rooms each room may import: the product (models, runfiles, reports, search) never imports a tool."""
COMMANDS = {"search.run", "search.certify", "search.baseline", "search.predict", "search.serving", "search.train"}
COMMANDS |= {"search.vectors", "reports.__main__", "models.kernels.__main__"}
"""The product's commands (`python -m MODULE`); any other command is a tool and lives in tools/."""


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its __init__.py)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The project modules that module `name` (at `path`) imports (`from package import module`
    counts as importing that module: the package runs first but hands nothing over)."""
    targets = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, path)
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(known)
            targets |= submodules if len(submodules) == len(node.names) else submodules | {base}
    return {t for t in targets if t in known and t != name}


def _runtime_nodes(tree: ast.AST):
    """All nodes except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _absolute(node: ast.ImportFrom, name: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, name, known) for name, path in known.items()}


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph as a list of modules, or [] when there is none (depth-first search)."""
    state: dict[str, str] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str]:
        state[node], _ = "open", trail.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node], _ = "done", trail.pop()
        return []

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_the_import_graph_has_no_cycle():
    assert cycle(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []


def room(name: str) -> str:
    return name.split(".")[0]


def commands() -> set[str]:
    """The modules that run as a command: a __main__.py, or a module with `if __name__ == "__main__":` at its top level."""
    found = set()
    for name, path in modules().items():
        body = ast.parse(path.read_text(encoding="utf-8")).body
        if path.name == "__main__.py" or any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in body):
            found.add(name)
    return found


def test_rooms_import_only_what_they_may():
    edges = graph()
    for name, targets in edges.items():
        assert {room(t) for t in targets} <= ALLOWED[room(name)], (name, sorted(targets))
    assert not [name for name, targets in edges.items() if "search.run" in targets], "nothing imports the driver"
    assert edges["runfiles.layout"] <= {"models", "models.config"}


def test_the_product_rooms_hold_the_products_commands_and_no_tool():
    product = {name for name in commands() if room(name) != "tools"}
    assert product == COMMANDS, "a tool's command goes to tools/; a new command of the product joins COMMANDS"


# ---------------------------------------------------------------- the session a phase takes


def test_a_phase_takes_a_typed_session_and_its_own_progress():
    """A parameter named `session` or `progress` is annotated, and no function takes both: the
    session's progress is `session.progress`, never a second object passed beside it."""
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                params = {a.arg: a for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs}
                where = f"{name}:{node.lineno} {getattr(node, 'name', 'lambda')}"
                found += [f"{where}: {p} untyped" for p in ("session", "progress") if p in params and not params[p].annotation]
                found += [f"{where}: takes a session and a progress"] if {"session", "progress"} <= set(params) else []
    assert not found, "\n".join(found)
