"""Benchmark: how fast, and in how much memory, bad inputs are refused.

Each case runs the real command (`showrunner check`, `report` or `run`) in a child process on a
show made for it in a temporary folder: 50 MB files holding an alias bomb, deep nesting or a huge
template expansion, a FIFO or a device as the show or an include, includes and images outside
the show's folder, template bombs, unusable journal paths. For each it
prints the exit status, the number of lines on stderr, the elapsed time and the child's peak
RSS, beside the goal: one line, a non-zero exit, within 5 s.

A hung child is killed after --timeout seconds (reported as such), and every child runs with
its address space limited to --memory-gb, so that a checkout that reads /dev/zero to the end
cannot take the machine down.

    .venv/bin/python bench/bench_bad_inputs.py
    .venv/bin/python bench/bench_bad_inputs.py --root /path/to/an/older/checkout --timeout 20
    .venv/bin/python bench/bench_bad_inputs.py -k template
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 5.0
UP = "../" * 40  # far enough to reach / from any temporary folder
SCENE = "scenes:\n  - name: a\n    prompts: a forest\n    duration: 1\n"
SHOW = "title: t\nend: stop\n" + SCENE

TEMPLATES = {
    "template: nested range loops": "{% for a in range(100000) %}{% for b in range(100000) %}"
                                    "{% endfor %}{% endfor %}",
    "template: chained **": "{{ ((9 ** 999) ** 999) ** 999 }}",
    "template: center(10**9)": "{{ 'x'|center(10**9) }}",
    "template: indent(10**9)": "{{ 'a\\nb'|indent(10**9) }}",
    "template: replace": "{{ ('x' * 1000)|replace('x', 'x' * 1000) }}",
    "template: ~ doubling": "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "template: macro doubling": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                                "{% endmacro %}{{ f(40) }}",
    "template: %-width": "{{ '%999999999d' % 1 }}",
}


@dataclass
class Case:
    name: str
    prepare: Callable[[Path], list[str]]  # makes the files; gives the command's arguments


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, "utf-8")
    return path


def _fifo_show(d: Path) -> list[str]:
    os.mkfifo(d / "pipe.yaml")
    return ["check", "pipe.yaml"]


def _device_show(d: Path) -> list[str]:
    (d / "zero.yaml").symlink_to("/dev/zero")
    return ["check", "zero.yaml"]


def _fifo_include(d: Path) -> list[str]:
    os.mkfifo(d / "pipe.yaml")
    _write(d, "show.yaml", "title: t\nscenes:\n  - include: pipe.yaml\n")
    return ["check", "show.yaml"]


def _device_include(d: Path) -> list[str]:
    (d / "zero.yaml").symlink_to("/dev/zero")
    _write(d, "show.yaml", "title: t\nscenes:\n  - include: zero.yaml\n")
    return ["check", "show.yaml", "--allow-path", "/dev"]


def _outside_include(d: Path) -> list[str]:
    _write(d, "show.yaml", f"title: t\ninclude:\n  lib: {UP}etc/hostname\n{SCENE}")
    return ["check", "show.yaml"]


def _outside_symlink(d: Path) -> list[str]:
    (d / "lib.yaml").symlink_to("/etc/hostname")
    _write(d, "show.yaml", f"title: t\ninclude:\n  lib: lib.yaml\n{SCENE}")
    return ["report", "show.yaml"]


def _outside_asset(d: Path) -> list[str]:
    _write(d, "show.yaml", "title: t\nend: stop\nassets:\n  images:\n    a: /etc/passwd\n"
                           f"{SCENE}    vace: {{refs: [a]}}\n")
    return ["run", "show.yaml", "--control-port", "-1"]


def _template(template: str) -> Callable[[Path], list[str]]:
    def prepare(d: Path) -> list[str]:
        _write(d, "show.yaml", f"title: t\n{SCENE}    notes: {json.dumps(template)}\n")
        return ["check", "show.yaml"]

    return prepare


def _load_budget(d: Path) -> list[str]:
    _write(d, "show.yaml", (
        "title: t\nscenes:\n  - each: 1000\n    scene:\n      name: \"s{{ loop.index }}\"\n"
        "      notes: \"{% for a in range(300) %}{% for b in range(300) %}{% endfor %}{% endfor %}\"\n"
    ))
    return ["check", "show.yaml"]


def _journal(kind: str) -> Callable[[Path], list[str]]:
    def prepare(d: Path) -> list[str]:
        _write(d, "show.yaml", SHOW)
        if kind == "directory":
            journal = d
        elif kind == "FIFO":
            os.mkfifo(d / "pipe.jsonl")
            journal = d / "pipe.jsonl"
        elif kind == "device":
            journal = Path("/dev/full")
        elif kind == "missing folder":
            journal = Path("/proc/nope/j.jsonl")
        else:  # no permission
            locked = d / "locked"
            locked.mkdir(mode=0o500)
            journal = locked / "j.jsonl" if os.geteuid() != 0 else Path("/sys/j.jsonl")
        return ["run", "show.yaml", "--journal", str(journal), "--control-port", "-1"]

    return prepare


def _fifty_mb(head: str, pad: bool = True) -> Callable[[Path], list[str]]:
    """`head`, then comments up to 50 MB (the size alone must not be what refuses it)."""

    def prepare(d: Path) -> list[str]:
        path = d / "show.yaml"
        line = "# " + "padding " * 12 + "\n"
        with path.open("w", encoding="utf-8") as out:
            out.write(head)
            if pad:
                out.write(line * (50_000_000 // len(line)))
        return ["check", str(path)]

    return prepare


_ALIASES = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)
]
FIFTY_MB = {
    "50 MB: alias bomb (10^12 values)": "title: t\nvars:\n" + "".join(
        f"  {line}\n" for line in _ALIASES) + "scenes: []\n",
    "50 MB: nesting 5,000 deep": "title: t\nscenes: []\nvars:\n  deep: " + "[" * 5000 + "]" * 5000
                                 + "\n",
    "50 MB: template of 10^8 characters": "title: t\nvars:\n  big: \"{{ 'x' * 100000000 }}\"\n"
                                          + SCENE,
}


CASES = [
    *(Case(name, _fifty_mb(head)) for name, head in FIFTY_MB.items()),
    Case("50 MB of `[` (nesting)", _fifty_mb("title: t\nx: " + "[" * 50_000_000 + "\n", pad=False)),
    Case("FIFO show file", _fifo_show),
    Case("FIFO include", _fifo_include),
    Case("show file -> /dev/zero", _device_show),
    Case("include -> /dev/zero (/dev allowed)", _device_include),
    Case("include ../../etc/hostname", _outside_include),
    Case("include symlink -> /etc/hostname (report)", _outside_symlink),
    Case("asset /etc/passwd (run)", _outside_asset),
    *(Case(name, _template(template)) for name, template in TEMPLATES.items()),
    Case("template: 1000 scenes, load budget", _load_budget),
    *(Case(f"journal: {kind} (run)", _journal(kind))
      for kind in ("directory", "FIFO", "device", "missing folder", "no permission")),
]


def _measure(args: list[str], cwd: Path, root: Path, timeout: float,
             memory: int) -> tuple[str, int, float, float, float]:
    """(outcome, stderr lines, elapsed s, peak RSS MB, CPU s) of one child."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "showrunner", *args], cwd=cwd, env=env,
                                 stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 preexec_fn=limit)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.kill(child.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if killed.is_set():
        outcome = "HUNG (killed)"
    elif "Traceback" in text or "MemoryError" in text:
        outcome = f"exit {child.returncode}, traceback"
    else:
        outcome = f"exit {child.returncode}"
    return outcome, len(lines), elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (PYTHONPATH)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a child is killed")
    parser.add_argument("--memory-gb", type=float, default=3.0, help="address space of each child")
    parser.add_argument("-k", dest="keyword", default="", help="only the cases whose name has this")
    args = parser.parse_args()
    memory = int(args.memory_gb * (1 << 30))
    print(f"showrunner from {args.root}; goal: one line, exit != 0, within {GOAL_S:g} s")
    print(f"{'case':44} {'outcome':24} {'lines':>5} {'elapsed':>9} {'CPU':>7} {'peak RSS':>9}  goal")
    met = 0
    cases = [c for c in CASES if args.keyword.lower() in c.name.lower()]
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "stage"
            folder.mkdir()
            command = case.prepare(folder)
            outcome, lines, elapsed, rss, cpu = _measure(command, folder, args.root, args.timeout,
                                                         memory)
        ok = outcome.startswith("exit") and "traceback" not in outcome and outcome != "exit 0" \
            and lines == 1 and elapsed <= GOAL_S
        met += ok
        print(f"{case.name:44} {outcome:24} {lines:5d} {elapsed:8.2f}s {cpu:6.2f}s {rss:7.0f} MB  "
              f"{'met' if ok else 'NOT MET'}", flush=True)
    print(f"{met} of {len(cases)} cases met the goal; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs (elapsed time follows the machine, CPU time much less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
