"""The `showrunner` command. Each subcommand is a thin call into the library."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from showrunner import __version__
from showrunner.errors import ShowrunnerError

_PROGRESS_AFTER_S = 1.0  # progress appears only for what takes longer than this


@contextlib.contextmanager
def _progress(what: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr while `what` runs, once it has taken over a
    second, and only when stderr is a terminal: piped output and logs stay clean. It is erased
    when done (rich's transient live display)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=True)
    progress.add_task(what, total=None)
    timer = threading.Timer(_PROGRESS_AFTER_S, progress.start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        progress.stop()


def _no_cyclic_gc() -> None:
    """A one-shot command (check, report, import) makes a large heap of acyclic objects and then
    exits: the cyclic collector would only rescan it again and again (a third of a 10,000-scene
    check). Reference counting still frees everything."""
    gc.disable()


def _check(args: argparse.Namespace) -> int:
    from showrunner.plan.preflight import plan_findings
    from showrunner.show.lint import check_paths

    _no_cyclic_gc()
    with _progress(f"checking {', '.join(args.paths)}"):
        code, out, err = check_paths(args.paths, strict=args.strict, as_json=args.json,
                                     plan=plan_findings, allow=args.allow_path)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def _schema(args: argparse.Namespace) -> int:
    from showrunner.show.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _report(args: argparse.Namespace) -> int:
    from showrunner.plan.preflight import compile_result
    from showrunner.plan.start import parse_position, state_at_point
    from showrunner.report.data import render_json
    from showrunner.report.html import render_html
    from showrunner.report.text import render_state, render_text
    from showrunner.show.lint import lint
    from showrunner.show.load import load

    _no_cyclic_gc()
    with _progress(f"loading {args.path}"):
        result = load(args.path, allow=args.allow_path)
        findings = lint(result)
        timeline = compile_result(result)
    if args.at:
        state = state_at_point(timeline, parse_position(timeline, args.at))
        sys.stdout.write(render_state(state, label=args.at))
        return 0
    now = datetime.now().astimezone()  # "next open" of opening hours; rendering stays pure
    for target, render in ((args.html, render_html), (args.json, render_json)):
        if target:
            page = render(timeline, findings=findings, now=now)
            if target == "-":
                sys.stdout.write(page)
            else:
                Path(target).write_text(page, "utf-8")
    if args.text or not (args.html or args.json):
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        sys.stdout.write(render_text(timeline, findings=findings, width=width))
    return 0


def _import(args: argparse.Namespace) -> int:
    from showrunner.importer.convert import import_file

    if args.output and not args.force and Path(args.output).exists():
        print(f"{args.output} exists; not overwriting it (use --force)", file=sys.stderr)
        return 1
    _no_cyclic_gc()
    with _progress(f"importing {args.file}"):
        result = import_file(args.file, hold=args.hold)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(result.yaml_text, "utf-8")
        print(f"wrote {args.output} ({result.kind})", file=sys.stderr)
    else:
        sys.stdout.write(result.yaml_text)
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sim(args: argparse.Namespace) -> int:
    from showrunner.sim import serve_forever

    record = Path(args.record) if args.record else None

    def ready(sim: object) -> None:
        print(f"Scope simulator on {getattr(sim, 'url', '?')} (Ctrl-C stops)", file=sys.stderr)

    # SIGTERM (service managers, `timeout`) ends the simulator as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve_forever(
                    args.host,
                    args.port,
                    record_path=record,
                    load_time=args.load_time,
                    fps=args.fps,
                    on_ready=ready,
                )
            )
    except OSError as exc:  # the port is taken, or the address is not this machine's
        reason = (exc.strerror or str(exc)).lower()
        print(f"sim: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from showrunner.app import RunOptions, StreamOutput, run

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    options = RunOptions(
        Path(args.path),
        scope_url=args.scope,
        start_scene=args.start_scene,
        at=args.at,
        journal_path=path(args.journal),
        record_video=path(args.record_video),
        state_file=path(args.state_file),
        reload_at=args.reload_at,
        control_host=args.control_host,
        control_port=args.control_port,
        osc_port=args.osc_port,
        osc_out=args.osc_out,
        min_go_interval=args.min_go_interval,
        allow_paths=tuple(args.allow_path),
        resume=args.resume,
        transport=args.transport,
    )
    return asyncio.run(run(options, output=StreamOutput(sys.stdout, sys.stderr)))


def _folder(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a folder: {value}")
    return path


def _allow_path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-path", metavar="DIR", action="append", default=[], type=_folder,
        help="also read includes and images from DIR (repeatable); by default only the show's "
             "folder and its subfolders",
    )


def _transport(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--transport", choices=["webrtc", "headless"],
        help="how the show reaches Scope: webrtc (video comes back) or headless (HTTP only, no "
             "video back; the picture leaves Scope by NDI/Spout/Syphon); default: the show's "
             "scope.transport",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="showrunner", description="Run AI-video shows against a Daydream Scope server."
    )
    parser.add_argument("--version", action="version", version=f"showrunner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="validate show files and lint them (no server needed)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.add_argument("--json", action="store_true", help="machine-readable findings")
    _allow_path(p)
    p.set_defaults(func=_check)

    p = sub.add_parser("schema", help="print the show-file JSON Schema")
    p.set_defaults(func=_schema)

    p = sub.add_parser("report", help="dry-run timeline of a show (no server needed)")
    p.add_argument("path")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report ('-': stdout)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout)")
    p.add_argument(
        "--text", action="store_true", help="print the table too when writing --html/--json"
    )
    p.add_argument("--at", metavar="TIME", help="print the resolved state at TIME or SCENE+OFFSET")
    _allow_path(p)
    p.set_defaults(func=_report)

    p = sub.add_parser("import", help="convert a Scope timeline or workflow file into a show")
    p.add_argument("file")
    p.add_argument("-o", "--output", metavar="OUT", help="write the show here (default stdout)")
    p.add_argument("--hold", action="store_true", help="hold the last look instead of stopping")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=_import)

    p = sub.add_parser("sim", help="serve the Scope simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--record", metavar="FILE", help="append every request as JSON lines")
    p.add_argument("--load-time", type=float, default=None, help="seconds a pipeline load takes")
    p.add_argument("--fps", type=float, default=None, help="pipeline fps for every pipeline")
    p.set_defaults(func=_sim)

    p = sub.add_parser("run", help="play a show live")
    p.add_argument("path")
    p.add_argument(
        "--scope", metavar="URL", help="Scope server URL (default: the show's, else the simulator)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--from", dest="start_scene", metavar="SCENE", help="start at this scene")
    where.add_argument("--at", metavar="TIME", help="start at TIME or SCENE+OFFSET")
    p.add_argument("--journal", metavar="FILE", help="write every action as JSON lines")
    p.add_argument("--record-video", metavar="FILE", help="write the received video to a file")
    _transport(p)
    p.add_argument(
        "--state-file", metavar="FILE",
        help="where the resume state is kept (default: .NAME.showrunner-state.json beside the show)",
    )
    p.add_argument(
        "--resume", action="store_true",
        help="continue where the last run of this show stopped (shows with hours or loops always do)",
    )
    p.add_argument(
        "--reload-at",
        choices=["now", "boundary"],
        help="apply edits to the playing scene now or at its end (default: the show's reload_at)",
    )
    p.add_argument("--control-host", default="127.0.0.1", help="bind address of the control page/API")
    p.add_argument(
        "--control-port", type=int, default=8765, help="control page/API port (-1: off, 0: any free)"
    )
    p.add_argument("--osc-port", type=int, default=None, help="receive OSC commands on this UDP port")
    p.add_argument("--osc-out", metavar="HOST:PORT", help="send OSC status to HOST:PORT")
    p.add_argument(
        "--min-go-interval", type=float, default=0.5, help="seconds between two accepted GOs"
    )
    _allow_path(p)
    p.set_defaults(func=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ShowrunnerError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
