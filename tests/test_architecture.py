"""Import layering: engines stay in their modules, the timeline stays pure, the simulator is independent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "showrunner"

# third-party engine -> the only modules (relative to showrunner/) allowed to import it
ENGINES: dict[str, tuple[str, ...]] = {
    "apscheduler": ("scheduling.py",),
    "watchfiles": ("reload.py",),
    "aiortc": ("rtc.py", "sim/"),
    "av": ("rtc.py", "sim/"),
    "httpx": ("scope.py",),
    "ruamel": ("load.py", "importer.py"),
    "pythonosc": ("osc.py",),
    "jinja2": ("templating.py", "report.py"),
}
PURE = ("model.py", "timeline.py", "state.py", "compiler.py", "pipelines.py", "errors.py", "plandiff.py")
IMPURE = {"asyncio", "httpx", "aiortc", "apscheduler", "watchfiles", "time", "socket", "threading"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _allowed(rel: str, places: tuple[str, ...]) -> bool:
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in places)


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_engines_are_confined(path: Path) -> None:
    rel = _rel(path)
    for name in _imports(path):
        top = name.split(".")[0]
        if top in ENGINES:
            assert _allowed(rel, ENGINES[top]), f"{rel} imports {name}; only {ENGINES[top]} may"


@pytest.mark.parametrize("name", PURE)
def test_pure_modules_do_no_io(name: str) -> None:
    path = PACKAGE / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    bad = {n for n in _imports(path) if n.split(".")[0] in IMPURE}
    assert not bad, f"{name} must stay pure but imports {sorted(bad)}"
    text = path.read_text("utf-8")
    for clock in ("time.time(", "datetime.now(", "loop.time(", "os.environ"):
        assert clock not in text, f"{name} reads the clock or environment ({clock})"


def test_simulator_is_independent_of_the_client() -> None:
    forbidden = {"showrunner.scope", "showrunner.rtc", "showrunner.player", "showrunner.timeline"}
    for path in (PACKAGE / "sim").rglob("*.py"):
        bad = _imports(path) & forbidden
        assert not bad, f"{_rel(path)} imports {sorted(bad)}: the simulator must stay independent"


def test_player_does_not_know_the_scope_client() -> None:
    path = PACKAGE / "player.py"
    if not path.exists():
        pytest.skip("player.py not present")
    bad = {n for n in _imports(path) if n in {"showrunner.scope", "showrunner.rtc"}}
    assert not bad, "player.py drives the Sink protocol and must not import the client"


def test_nothing_imports_the_cli() -> None:
    for path in _modules():
        if _rel(path) not in ("cli.py", "__main__.py"):
            assert "showrunner.cli" not in _imports(path), f"{_rel(path)} imports showrunner.cli"
