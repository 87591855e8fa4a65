"""Where a show was at its last scene start: the position a restarted run picks up from.

Pure data; `showrunner.live.resume` reads and writes it as the state file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ResumeState"]

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
