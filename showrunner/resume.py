"""The state file that lets a restarted run pick the show up where the wall clock says it is.

Written at every scene start, atomically (temp file, fsync, ``os.replace``, then an fsync of
the folder), so a power cut leaves either the old or the new file, never half of one. It
holds only what is needed to find the position again: which show (path and content hash),
when the show and the current part started (unix time), and which occurrence was playing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "STATE_FILE_NAME",
    "ResumeState",
    "clear_state",
    "default_state_path",
    "read_state",
    "show_hash",
    "write_state",
]

log = logging.getLogger("showrunner.resume")

STATE_FILE_NAME = ".showrunner-state.json"
_VERSION = 1


@dataclass(frozen=True)
class ResumeState:
    """Where a show was at its last scene start."""

    show: str  # absolute path of the show file
    show_hash: str  # sha256 of the show file and the files it includes
    origin: float  # unix time of the show's start (part 0's origin)
    scene: str  # the occurrence that was playing
    index: int
    iteration: int
    path: tuple[tuple[str, int], ...]
    part: int
    part_origin: float  # unix time the current part started
    part_start: float | None = None  # the occurrence's start within its part (seconds)
    cue: str | None = None  # the cue that started the current part (None: a timed part)
    cue_scene: str | None = None  # the scene that cue fired
    written_at: float = 0.0
    part_origins: dict[str, float] = field(default_factory=dict)  # part number -> unix origin

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = [list(step) for step in self.path]
        return {"version": _VERSION, **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResumeState:
        """Rebuild a state; raises ValueError/KeyError/TypeError on a malformed file."""
        if not isinstance(data, dict):
            raise TypeError("the state file does not hold a JSON object")
        if data.get("version") != _VERSION:
            raise ValueError(f"unknown state file version {data.get('version')!r}")
        return cls(
            show=str(data["show"]),
            show_hash=str(data["show_hash"]),
            origin=float(data["origin"]),
            scene=str(data["scene"]),
            index=int(data["index"]),
            iteration=int(data["iteration"]),
            path=tuple((str(name), int(count)) for name, count in data["path"]),
            part=int(data["part"]),
            part_origin=float(data["part_origin"]),
            part_start=None if data.get("part_start") is None else float(data["part_start"]),
            cue=None if data.get("cue") is None else str(data["cue"]),
            cue_scene=None if data.get("cue_scene") is None else str(data["cue_scene"]),
            written_at=float(data.get("written_at", 0.0)),
            part_origins={str(k): float(v) for k, v in dict(data.get("part_origins", {})).items()},
        )


def show_hash(files: Iterable[Path]) -> str:
    """A content hash of the show file and its includes (a changed show does not resume)."""
    digest = hashlib.sha256()
    for path in files:
        path = Path(path)
        digest.update(str(path.name).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"<missing>")
    return digest.hexdigest()


def default_state_path(show_path: Path, journal_path: Path | None = None) -> Path:
    """Next to the journal (``<journal>.state.json``), else ``.showrunner-state.json`` beside the show."""
    if journal_path is not None:
        journal_path = Path(journal_path)
        return journal_path.with_name(journal_path.stem + ".state.json")
    return Path(show_path).resolve().parent / STATE_FILE_NAME


def write_state(path: Path, state: ResumeState) -> None:
    """Replace the state file atomically; logs (never raises) on failure: the show goes on."""
    path = Path(path)
    text = json.dumps(state.to_json(), indent=2)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        log.error("cannot write the state file %s: %s", path, exc)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform lets a folder be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_state(path: Path) -> ResumeState | None:
    """The saved state, or None when there is none or it cannot be read (logged)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring the state file %s: %s", path, exc)
        return None
    try:
        return ResumeState.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring the state file %s: %s", path, exc)
        return None


def clear_state(path: Path) -> None:
    """Remove the state file (after a finished show, so the next run starts from the top)."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("cannot remove the state file %s: %s", path, exc)
