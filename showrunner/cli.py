"""The `showrunner` command. Each subcommand is a thin call into the library."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from showrunner import __version__
from showrunner.errors import ShowrunnerError

if TYPE_CHECKING:
    from showrunner.live.journal import Rotation

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


# `check --scope`: the server could not be asked (unreachable, or a broken answer).
EXIT_SCOPE_UNREACHABLE = 3


def _check(args: argparse.Namespace) -> int:
    from showrunner.errors import ScopeError
    from showrunner.plan.preflight import plan_findings
    from showrunner.show.lint import Finding, Planner, check_paths
    from showrunner.show.load import LoadResult

    _no_cyclic_gc()
    verified: list[str] = []
    planner: Planner = plan_findings
    if args.scope:
        import asyncio  # only here: the check of a show without a server never needs it

        from showrunner.app import check_scope
        from showrunner.settings import Settings

        settings = Settings.from_environ()

        def planner(result: LoadResult) -> list[Finding]:
            findings = list(plan_findings(result))
            found, report = asyncio.run(check_scope(result, args.scope, settings))
            if report is not None and report.ok:
                verified.extend(f"{result.path}: {line}" for line in report.verified)
            return [*findings, *found]

    try:
        with _progress(f"checking {', '.join(args.paths)}"):
            code, out, err = check_paths(args.paths, strict=args.strict, as_json=args.json,
                                         plan=planner, allow=args.allow_path)
    except ScopeError as exc:
        print(f"error: cannot check against {args.scope}: {exc}", file=sys.stderr)
        return EXIT_SCOPE_UNREACHABLE
    sys.stdout.write(out)
    if not args.json:
        sys.stdout.write("".join(f"{line}\n" for line in verified))
    sys.stderr.write(err)
    return code


def _schema(args: argparse.Namespace) -> int:
    from showrunner.show.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def _report(args: argparse.Namespace) -> int:
    from showrunner.plan.preflight import compile_result
    from showrunner.plan.start import parse_position, state_at_point
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
    if args.html:  # the page's engine (jinja2) is imported only when a page is asked for
        from showrunner.report.html import render_html

        _write_page(args.html, render_html(timeline, findings=findings, now=now, gpu_rate=args.gpu_rate))
    if args.json:
        from showrunner.report.data import render_json

        _write_page(args.json, render_json(timeline, findings=findings, now=now, gpu_rate=args.gpu_rate))
    if args.text or not (args.html or args.json):
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        sys.stdout.write(render_text(timeline, findings=findings, width=width, gpu_rate=args.gpu_rate))
    return 0


def _write_page(target: str, page: str) -> None:
    if target == "-":
        sys.stdout.write(page)
    else:
        Path(target).write_text(page, "utf-8")


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
    import asyncio

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
                    ice_servers=_sim_ice_servers(args.ice_server),
                    pipelines=args.pipeline or None,
                )
            )
    except OSError as exc:  # the port is taken, or the address is not this machine's
        reason = (exc.strerror or str(exc)).lower()
        print(f"sim: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    except ValueError as exc:  # an unknown --pipeline
        print(f"sim: {exc}", file=sys.stderr)
        return 1
    return 0


def _sim_ice_servers(urls: list[str]) -> list[dict[str, str | list[str] | None]]:
    from showrunner.settings import Settings

    settings = Settings.from_environ()
    out: list[dict[str, str | list[str] | None]] = []
    for url in urls:
        if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
            raise ShowrunnerError(f"sim: --ice-server {url!r}: expected a stun:, turn: or turns: URL")
        turn = url.startswith("turn")
        out.append({"urls": [url], "username": settings.turn_username if turn else None,
                    "credential": settings.turn_credential if turn else None})
    return out


def _journal_rotation(args: argparse.Namespace) -> Rotation | None:
    """The `Rotation` the --journal-* options ask for (None: none asked)."""
    from showrunner.live.journal import Rotation

    if args.journal_max_size is None and not args.journal_rotate and args.journal_keep is None:
        return None
    keep = 10 if args.journal_keep is None else args.journal_keep
    return Rotation(max_bytes=args.journal_max_size, daily=args.journal_rotate == "daily", keep=keep)


def _size(text: str) -> int:
    from showrunner.live.journal import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _line_buffered() -> None:
    """Each line out at once, also into a pipe (journald under systemd, `| tee`): a
    service's log then shows a line when it happens, in order with the other stream."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and not stream.line_buffering:
            stream.reconfigure(line_buffering=True)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from showrunner.app import RunOptions, StreamOutput, run

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    _line_buffered()
    rotation = _journal_rotation(args)
    if rotation is not None and not args.journal:
        print("run: --journal-max-size, --journal-rotate and --journal-keep need --journal FILE",
              file=sys.stderr)
        return 2

    options = RunOptions(
        Path(args.path),
        scope_url=args.scope,
        start_scene=args.start_scene,
        at=args.at,
        journal_path=path(args.journal),
        journal_rotation=rotation,
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
        ice_servers=tuple(args.ice_server),
        ice_relay_only=args.ice_relay_only,
        alert_webhook=args.alert_webhook,
        alert_after=args.alert_after,
        tempo=args.tempo,
        transport=args.transport,
    )
    return asyncio.run(run(options, output=StreamOutput(sys.stdout, sys.stderr)))


def _service_install(args: argparse.Namespace) -> int:
    from showrunner.plan.preflight import compile_result
    from showrunner.service import SYSTEM_UNIT_DIR, Service, install_unit
    from showrunner.settings import Settings
    from showrunner.show.load import load

    show = Path(args.show).absolute()
    run_args = list(args.run_args)
    _parser().parse_args(["run", str(show), *run_args])  # a wrong option exits 2 here, not at boot
    compile_result(result := load(show, allow=args.allow_path))  # a broken show: its errors, exit 1
    service = Service(show, result.show.title, user=args.user, restart=args.restart,
                      restart_sec=args.restart_sec, run_as=args.run_as, run_args=tuple(run_args))
    if args.unit_dir:
        unit_dir = Path(args.unit_dir)
    elif args.user:
        found = Settings.from_environ().user_unit_dir
        if found is None:
            print("service: neither XDG_CONFIG_HOME nor HOME is set: give --unit-dir", file=sys.stderr)
            return 1
        unit_dir = Path(found)
    else:
        unit_dir = SYSTEM_UNIT_DIR
    if args.dry_run:
        sys.stdout.write(service.text())
        print(f"(not written: {unit_dir / service.name})", file=sys.stderr)
        return 0
    try:
        path = install_unit(service, unit_dir)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        print(f"service: cannot write {unit_dir / service.name}: {reason}"
              + ("" if args.user else " (run with sudo, or install it for yourself with --user)"),
              file=sys.stderr)
        return 1
    systemctl = "systemctl --user" if args.user else "systemctl"
    journal = f"journalctl --user-unit {service.name}" if args.user else f"journalctl -u {service.name}"
    print(f"wrote {path}\nstart it now and at every boot:\n"
          f"  {systemctl} daemon-reload && {systemctl} enable --now {service.name}\n"
          f"follow its log:\n  {journal} -f")
    if args.user:
        print("a user's services start at boot only with lingering on: loginctl enable-linger")
    return 0


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a count (0 or more): {value}")
    return int(value)


def _folder(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a folder: {value}")
    return path


def _price(value: str) -> float:
    try:
        price = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value}") from None
    if not 0 < price <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be above 0: {value}")
    return price


def _web_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"not an http:// or https:// URL: {value}")
    return value


def _gpu_rate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpu-rate", type=_price, metavar="PRICE",
                   help="price of one GPU hour (overrides the show's cost.per_hour)")


def _alert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alert-webhook", metavar="URL", type=_web_url,
                   help="POST outage and recovery messages here (default: the show's alerts.webhook)")
    p.add_argument("--alert-after", metavar="S", type=_price,
                   help="seconds without picture that make an outage (default: alerts.after, 30)")


def _allow_path(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-path", metavar="DIR", action="append", default=[], type=_folder,
        help="also read includes and images from DIR (repeatable); by default only the show's "
             "folder and its subfolders",
    )


def _check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scope", metavar="URL",
        help="also check against this Scope server's pipelines (as run does before the show); "
             f"exit {EXIT_SCOPE_UNREACHABLE} when it cannot be asked",
    )
    p.set_defaults(func=_check)


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sim", help="serve the Scope simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--record", metavar="FILE", help="append every request as JSON lines")
    p.add_argument("--load-time", type=float, default=None, help="seconds a pipeline load takes")
    p.add_argument("--fps", type=float, default=None, help="pipeline fps for every pipeline")
    _sim_options(p)


def _sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ice-server", metavar="URL", action="append", default=[],
        help="hand out this STUN/TURN server at /api/v1/webrtc/ice-servers (repeatable; TURN "
             "credentials from SHOWRUNNER_TURN_USERNAME/_CREDENTIAL); default: none",
    )
    p.add_argument("--pipeline", metavar="ID", action="append", default=[],
                   help="offer only these pipelines (repeatable; default: all it knows)")
    p.set_defaults(func=_sim)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ice-server", metavar="auto|server|none|URL", action="append", default=[],
        help="ICE servers of the WebRTC connection (repeatable URLs; TURN credentials from "
             "SHOWRUNNER_TURN_USERNAME/_CREDENTIAL); default: the show's scope.ice_servers, auto",
    )
    p.add_argument("--ice-relay-only", action="store_true",
                   help="connect through the TURN server only (relay candidates)")
    p.set_defaults(func=_run)


def _journal_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--journal", metavar="FILE", help="write every action as JSON lines")
    p.add_argument("--journal-max-size", metavar="SIZE", type=_size,
                   help="start a new journal file past SIZE (50MB, 500kB, 1GiB); the old one is FILE.1")
    p.add_argument("--journal-rotate", choices=["daily"],
                   help="start a new journal file each day (FILE.1 is yesterday's)")
    p.add_argument("--journal-keep", metavar="N", type=_count, default=None,
                   help="old journal files kept when rotating (default 10)")


def _add_service(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("service", help="run a show as a service that survives crashes and reboots")
    service = p.add_subparsers(dest="action", required=True)
    p = service.add_parser("install", help="write a systemd unit that runs SHOW with --resume")
    p.add_argument("show")
    p.add_argument("--user", action="store_true", help="a unit of your own (systemctl --user)")
    p.add_argument("--dry-run", action="store_true", help="print the unit instead of writing it")
    p.add_argument("--unit-dir", metavar="DIR",
                   help="write the unit here (default /etc/systemd/system, or your user units)")
    p.add_argument("--restart", choices=["always", "on-failure"], default="always",
                   help="when systemd starts it again (default always)")
    p.add_argument("--restart-sec", type=float, default=5.0, metavar="S",
                   help="seconds before a restart (default 5)")
    p.add_argument("--run-as", metavar="USER", help="the user a system unit runs as")
    _allow_path(p)
    p.set_defaults(func=_service_install, run_args=[])
    p.epilog = "Options for `showrunner run` follow a `--`: service install SHOW -- --scope URL"


def _tempo(p: argparse.ArgumentParser) -> None:
    import typing

    from showrunner.show.model import TempoSourceName

    sources: tuple[str, ...] = typing.get_args(TempoSourceName)
    p.add_argument(
        "--tempo", metavar="SOURCE", choices=sources,
        help=f"where the tempo comes from: {', '.join(sources)} (default: the show's "
             "tempo.source, else fixed)",
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
    _check_options(p)

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
    _gpu_rate(p)
    _allow_path(p)
    p.set_defaults(func=_report)

    p = sub.add_parser("import", help="convert a Scope timeline or workflow file into a show")
    p.add_argument("file")
    p.add_argument("-o", "--output", metavar="OUT", help="write the show here (default stdout)")
    p.add_argument("--hold", action="store_true", help="hold the last look instead of stopping")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=_import)

    _add_sim(sub)

    p = sub.add_parser("run", help="play a show live")
    p.add_argument("path")
    p.add_argument(
        "--scope", metavar="URL", help="Scope server URL (default: the show's, else the simulator)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--from", dest="start_scene", metavar="SCENE", help="start at this scene")
    where.add_argument("--at", metavar="TIME", help="start at TIME or SCENE+OFFSET")
    _journal_options(p)
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
    _alert_args(p)
    _tempo(p)
    _allow_path(p)
    _run_options(p)

    _add_service(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if words[:2] == ["service", "install"] and "--" in words:  # `showrunner run` options follow
        cut = words.index("--")
        args = parser.parse_args(words[:cut])
        args.run_args = words[cut + 1:]
    else:
        args = parser.parse_args(words)
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
