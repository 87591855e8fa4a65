"""Package edges: engines stay in their modules, the plan stays pure, imports flow one way, no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "showrunner"

# third-party engine -> the only modules (relative to showrunner/) allowed to import it
ENGINES: dict[str, tuple[str, ...]] = {
    "apscheduler": ("live/scheduling.py",),
    "watchfiles": ("reload/watch.py",),
    "aiortc": ("scope/rtc.py", "sim/"),
    "av": ("scope/rtc.py", "sim/"),
    "httpx": ("scope/client.py",),
    "ruamel": ("show/yaml.py", "importer/convert.py"),
    "ryml": ("show/yaml.py",),
    "rich": ("cli.py",),
    "pythonosc": ("control/osc.py",),
    "aalink": ("sync/link.py",),
    "jinja2": ("show/templating.py", "report/html.py"),
    "uvicorn": ("serving.py",),
    "starlette": ("serving.py", "control/http.py", "sim/app.py"),
    "mido": ("midi/ports.py",),
    "rtmidi": ("midi/ports.py",),
    "prometheus_client": ("control/metrics.py",),
}
IMPURE = {"asyncio", "httpx", "aiortc", "apscheduler", "watchfiles", "time", "socket", "threading", "os"}

# package -> the packages of showrunner it may import (besides itself and the shared modules)
SHARED = {"errors", "pipelines", "settings"}
LAYERS: dict[str, set[str]] = {
    "show": set(),
    "music": set(),
    "plan": {"show", "music"},
    "report": {"show", "plan", "music"},
    "importer": {"show"},
    "scope": set(),
    "live": {"show", "plan", "music"},
    "reload": {"show", "plan"},
    "control": {"serving"},
    "sim": {"serving"},
    "midi": {"music", "show"},
    "sync": {"music", "midi"},
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (TYPE_CHECKING and function bodies too)."""
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            for alias in node.names:  # `from showrunner.plan import timeline` imports a module
                names.add(f"{node.module}.{alias.name}")
    return names


def _internal(path: Path, known: set[str]) -> set[str]:
    """The modules of showrunner that `path` imports; `from pkg import module` names the module."""
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & known
            names |= subs
            if len(subs) < len(node.names):
                names.add(node.module)
    return {n for n in names if n in known and n != _name(path)}
    return names


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _allowed(rel: str, places: tuple[str, ...]) -> bool:
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in places)


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_engines_are_confined(path: Path) -> None:
    rel = _rel(path)
    for name in _imports(path):
        top = name.split(".")[0]
        if top in ENGINES:
            assert _allowed(rel, ENGINES[top]), f"{rel} imports {name}; only {ENGINES[top]} may"


@pytest.mark.parametrize(
    "path", sorted([*(PACKAGE / "plan").rglob("*.py"), *(PACKAGE / "music").rglob("*.py")]), ids=_rel
)
def test_the_plan_does_no_io(path: Path) -> None:
    bad = {n for n in _imports(path) if n.split(".")[0] in IMPURE}
    assert not bad, f"{_rel(path)} must stay pure but imports {sorted(bad)}"
    text = path.read_text("utf-8")
    for clock in ("time.time(", "datetime.now(", "loop.time(", "os.environ", "open("):
        assert clock not in text, f"{_rel(path)} reads the clock, a file or the environment ({clock})"


def test_imports_flow_one_way() -> None:
    known = {_name(p) for p in _modules()}
    wrong: list[str] = []
    for path in _modules():
        area = _area(_name(path))
        if area not in LAYERS:
            continue
        may = LAYERS[area] | SHARED | {area}
        for dep in _internal(path, known):
            if _area(dep) not in may and dep != "showrunner":
                wrong.append(f"{_rel(path)} imports {dep}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_live_and_scope_meet_only_through_the_sink() -> None:
    known = {_name(p) for p in _modules()}
    for path in (PACKAGE / "live").rglob("*.py"):
        assert not {d for d in _internal(path, known) if _area(d) == "scope"}, _rel(path)
    for path in (PACKAGE / "scope").rglob("*.py"):
        assert not {d for d in _internal(path, known) if _area(d) == "live"}, _rel(path)


def test_no_import_cycles() -> None:
    known = {_name(p) for p in _modules()}
    graph = {_name(p): _internal(p, known) for p in _modules()}
    # a package's __init__ is imported with any of its modules, but only counts when it imports
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep):], dep]))
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_nothing_imports_the_cli() -> None:
    for path in _modules():
        if _rel(path) not in ("cli.py", "__main__.py"):
            assert "showrunner.cli" not in _imports(path), f"{_rel(path)} imports showrunner.cli"


def test_environment_is_read_in_settings_only() -> None:
    for path in _modules():
        if _rel(path) in ("settings.py",):
            continue
        text = path.read_text("utf-8")
        assert "os.environ" not in text and "getenv(" not in text, f"{_rel(path)} reads the environment"


MAX_CLASS_LINES = 500
MAX_FUNCTION_LINES = 80


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_classes_and_functions_stay_small(path: Path) -> None:
    """A class over ~500 lines or a function over 80 is a room holding several concepts."""
    tree = ast.parse(path.read_text("utf-8"))
    big: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if lines > limit:
                big.append(f"{node.name} ({lines} lines, limit {limit})")
    assert not big, f"{_rel(path)}: " + ", ".join(big)
