"""`showrunner service install`: a systemd unit that plays one show and survives crashes and
reboots (docs/operating.md: "A service").

The unit runs ``showrunner run SHOW --resume`` from the show's folder with the showrunner of
this installation (its virtual environment's), restarts it a few seconds after it ends
(`Restart=always`, or `on-failure`), and starts it at boot. A show with opening hours or a
loop comes back at the scene the wall clock says (live/resume.py). Secrets (a Scope token,
the control token) go into an optional environment file beside the unit, never into it.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SYSTEM_UNIT_DIR", "Service", "executable", "install_unit", "unit_name"]

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
RESTARTS = ("always", "on-failure")


def unit_name(show: Path) -> str:
    """``showrunner-NAME.service`` for ``NAME.yaml`` (characters systemd does not take become -)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", show.stem).strip("-") or "show"
    return f"showrunner-{stem}.service"


def executable() -> list[str]:
    """How to start this installation's showrunner: its script beside the interpreter (a
    virtual environment's bin/), else the interpreter with ``-m showrunner``."""
    script = Path(sys.executable).absolute().parent / "showrunner"
    if script.is_file():
        return [str(script)]
    return [str(Path(sys.executable).absolute()), "-m", "showrunner"]


def _quote(argument: str) -> str:
    """One ExecStart argument: systemd splits on spaces and expands % and $, as a shell would."""
    quoted = shlex.quote(argument).replace("%", "%%")
    return quoted.replace("$", "$$")


@dataclass(frozen=True)
class Service:
    """One show's unit: what it runs, where, and how it restarts."""

    show: Path  # absolute
    title: str
    user: bool = False  # a user unit (systemctl --user) rather than a system one
    restart: str = "always"
    restart_sec: float = 5.0
    run_as: str | None = None  # User= of a system unit
    run_args: tuple[str, ...] = ()  # more `showrunner run` options (--scope, --journal, ...)
    command: tuple[str, ...] = ()  # the showrunner executable (default: this installation's)

    def __post_init__(self) -> None:
        if self.restart not in RESTARTS:
            raise ValueError(f"restart must be one of {', '.join(RESTARTS)}, not {self.restart!r}")

    @property
    def name(self) -> str:
        return unit_name(self.show)

    def exec_start(self) -> str:
        command = list(self.command) or executable()
        args = [*command, "run", str(self.show), "--resume", *self.run_args]
        return " ".join(_quote(a) for a in args)

    def environment_file(self) -> str:
        stem = self.name.removesuffix(".service")
        return f"%h/.config/showrunner/{stem}.env" if self.user else f"/etc/showrunner/{stem}.env"

    def text(self) -> str:
        """The unit file."""
        title = re.sub(r"[\r\n]+", " ", self.title).replace("%", "%%")
        lines = [
            "# Written by `showrunner service install`; edit, then `systemctl"
            f"{' --user' if self.user else ''} daemon-reload`.",
            "[Unit]",
            f"Description=showrunner: {title}",
            "Wants=network-online.target",
            "After=network-online.target",
            "StartLimitIntervalSec=0",  # keep restarting however often it fails
            "",
            "[Service]",
            "Type=simple",
            f"WorkingDirectory={str(self.show.parent).replace('%', '%%')}",
            f"ExecStart={self.exec_start()}",
            f"Restart={self.restart}",
            f"RestartSec={self.restart_sec:g}",
            "KillSignal=SIGTERM",  # closes the Scope session and keeps the resume state
            "TimeoutStopSec=30",
            f"EnvironmentFile=-{self.environment_file()}",
            f"SyslogIdentifier={self.name.removesuffix('.service')}",
        ]
        if self.run_as and not self.user:
            lines.append(f"User={self.run_as}")
        lines += ["", "[Install]", f"WantedBy={'default.target' if self.user else 'multi-user.target'}"]
        return "\n".join(lines) + "\n"


def install_unit(service: Service, unit_dir: Path) -> Path:
    """Write the unit into `unit_dir` (made if missing) and return its path."""
    unit_dir.mkdir(parents=True, exist_ok=True)
    path = unit_dir / service.name
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(service.text(), "utf-8")
    temporary.replace(path)
    return path
