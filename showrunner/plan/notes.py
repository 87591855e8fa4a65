"""Compile warnings that know which key of their scene they are about.

A `Note` is a plain string wherever warnings are read (the report prints them as they are);
`showrunner check` also reads its `loc` to point at the text, and its `code` to leave out what
the linter already says in its own words.
"""

from __future__ import annotations

from showrunner.show.model import Loc

__all__ = ["Note"]


class Note(str):
    """A warning about one scene; `loc` is the key path inside the scene (() = the scene)."""

    loc: Loc
    code: str

    def __new__(cls, text: str, loc: Loc = (), code: str = "plan") -> Note:
        note = super().__new__(cls, text)
        note.loc = tuple(loc)
        note.code = code
        return note
