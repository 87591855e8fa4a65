"""Read a show file: safe YAML with exact positions, templates, includes, generators, validation.

The pipeline is: text → YAML *nodes* (show/yaml.py; every node keeps its line and column) → plain Python
data, built by one walk that also renders jinja2 templates inside string values, splices scene
includes and expands ``each`` generators → :class:`~showrunner.show.model.Show`. The walk records where
each value of the final data was written (file, line, column), so a pydantic error location or a
lint finding can point at the text the user typed, even inside an included file or a generated
scene.

Nothing here constructs arbitrary objects: only plain YAML scalars, lists and mappings are built,
any other tag is an error. Every problem is collected and raised together as
:class:`~showrunner.errors.ShowErrors`; nothing else escapes :func:`load`.
"""

from __future__ import annotations

import bisect
import copy
import difflib
import gc
import os.path
import re
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from showrunner.errors import ShowError, ShowErrors
from showrunner.show.explain import messages, short
from showrunner.show.files import (
    MAX_FILE_BYTES,
    FileProblem,
    FileTooLarge,
    ReadPolicy,
    check_file,
    read_bytes,
)
from showrunner.show.model import KEY, Loc, Show, semantic_problems
from showrunner.show.yaml import (
    MAP,
    MAP_TAG,
    MAX_DEPTH,
    MAX_NODES,
    PLAIN_TAG,
    SCALAR,
    SEQ,
    SEQ_TAG,
    SKIPPED_TAG,
    STR_TAG,
    YAML_TAG,
    Lines,
    Node,
    TooManyNodes,
    YamlProblem,
    compose,
    yaml_float,
    yaml_int,
)

if TYPE_CHECKING:  # jinja2 is imported when a show has a template (start-up of check/report)
    from showrunner.show.templating import Sandbox

# Bombs are stopped by counting, not by file size (MAX_FILE_BYTES, in show/files.py, is a read
# limit no real show reaches): MAX_NODES nodes written in one file and MAX_DEPTH nesting levels
# (show/yaml.py), and MAX_VALUES values made beyond those written (by aliases, merges,
# generators and templates).
MAX_VALUES = 200_000
MAX_EACH = 1000  # scenes one `each` block may generate
# What one template (and all of them) may build and do is set in showrunner.show.templating.

_YAML_TAG = YAML_TAG
_PLAIN_TAGS = frozenset(f"{_YAML_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_INT_TAG, _FLOAT_TAG, _BOOL_TAG, _NULL_TAG = (f"{_YAML_TAG}{t}" for t in ("int", "float", "bool", "null"))
_MERGE_TAG = f"{_YAML_TAG}merge"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHAPE = "a show file is a mapping with at least `title` and `scenes`"
_EACH_NOTE = re.compile(r" \(each [^()]*\)$")
_SCENE_BLOCKS = frozenset({"include", "each"})  # list items of `scenes` that are not a scene
_KEPT = (PLAIN_TAG, SKIPPED_TAG)  # scenes whose text is known to be plain data


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pos:
    path: str
    line: int  # 1-based
    col: int  # 1-based
    note: str = ""  # which generator iteration made the value, e.g. "(each mood='rain')"


# Where a value was written, kept cheaply while building: the node (its line and column are
# worked out when asked), the file's display path and the generator note.
_Where = tuple[Node, str, str]
# In the main file, read by the fast parser: the byte offset alone (made a line and column when
# asked), so the index keeps no node and the parsed tree is freed once the data is built.
_Spot = _Where | _Pos | Node | int


@dataclass
class _Index:
    """Where each value (and each mapping key) of the built data was written."""

    main: str
    values: dict[Loc, _Spot] = field(default_factory=dict)
    keys: dict[Loc, _Spot] = field(default_factory=dict)
    lines: Lines | None = None  # the main file's text, when its offsets are kept (int spots)
    # Scenes built straight from the text (PLAIN_TAG): scene index -> where its text starts (its
    # first key) and ends. The positions inside are read from that text when first asked for.
    later: dict[int, tuple[int, int]] = field(default_factory=dict)

    def value(self, loc: Loc) -> _Pos:
        """The position of `loc`, or of the nearest enclosing value that was written."""
        if self.later and len(loc) > 2 and loc[0] == "scenes" and loc[1] in self.later:
            self._read_scene(loc[1])
        for end in range(len(loc), -1, -1):
            where = self.values.get(loc[:end])
            if where is not None:
                return self._pos(where)
        return _Pos(self.main, 1, 1)

    def key(self, loc: Loc) -> _Pos:
        if self.later and len(loc) > 2 and loc[0] == "scenes" and loc[1] in self.later:
            self._read_scene(loc[1])
        where = self.keys.get(loc)
        return self._pos(where) if where is not None else self.value(loc[:-1])

    def _read_scene(self, scene: Any) -> None:
        """The positions inside a scene built straight from the text: its text is parsed alone
        (indented as in the file) and its offsets moved to where it starts. (Filled in before
        the scene leaves `later`: a reader on another thread sees all of it or waits for none.)"""
        start, end = self.later[scene]
        assert self.lines is not None
        data = self.lines.data
        line = data.rfind(b"\n", 0, start) + 1
        col = len(data[line:start].decode("utf-8"))
        scratch = _Builder(_Index(self.main), _Templates())
        root = scratch.parse(" " * col + data[start:end].decode("utf-8"), self.main)
        if root is None or root.kind != MAP or scratch.errors:
            self.later.pop(scene, None)  # cannot happen for plain data: the scene's start stays
            return
        loc: Loc = ("scenes", scene)
        scratch.build(root, loc, self.main, None)
        for table, own in ((self.values, scratch.index.values), (self.keys, scratch.index.keys)):
            for sub, spot in own.items():
                if sub == loc:
                    continue
                if isinstance(spot, int):
                    table.setdefault(sub, spot - col + start)
                elif isinstance(spot, Node):  # read by the exact parser: a line and column
                    first = self.lines.line_col(start)[0] - 1  # lines before the scene's
                    table.setdefault(sub, _Pos(self.main, spot.line + first, spot.col))
        self.later.pop(scene, None)

    def spot(self, node: Node) -> _Spot:
        """How to keep where `node` (of the main file, no generator note) was written."""
        return node.off if self.lines is not None and node.off >= 0 else node

    def _pos(self, where: _Spot) -> _Pos:
        if isinstance(where, int):
            assert self.lines is not None
            return _Pos(self.main, *self.lines.line_col(where))
        if isinstance(where, _Pos):
            return where
        if isinstance(where, Node):  # the common case, kept without a tuple: in the main file
            return _Pos(self.main, where.line, where.col)
        node, path, note = where
        return _Pos(path, node.line, node.col, note)


@dataclass(frozen=True)
class LoadResult:
    """A valid show plus what is needed to point at its text and to watch it for edits."""

    show: Show
    path: Path
    files: tuple[Path, ...]  # the show file, included files and local asset files
    _index: _Index = field(repr=False, compare=False, default_factory=lambda: _Index("<show>"))
    # Scenes by the text they were written as, for the next load of the same file (`previous`).
    _scenes: _SceneCache | None = field(repr=False, compare=False, default=None)


@dataclass
class _FileMap:
    """The main file of a load whose scenes are all plain text in that file (no includes,
    generators, templates, anchors or aliases in them), for an edit inside one scene: that
    scene alone is read again (_Loader.one_scene)."""

    data: bytes  # the main file's UTF-8 text
    starts: list[int]  # where each scene's text starts (its first key), by scene index
    end: int  # where the last scene's own text ends: the line of the next top-level key, or EOF
    keys: tuple[str, ...]  # the top-level keys in file order
    top: dict[str, Any]  # the built top-level values, but `scenes`
    index: _Index | None  # the load's positions, until `where` is first asked for
    _where: tuple[tuple[bool, Loc, int], ...] | None = None

    def where(self) -> tuple[tuple[bool, Loc, int], ...] | None:
        """(a key?, loc, offset) of each position outside the scenes; None when one is not an
        offset in this file. Worked out on the first edit (check and report never need it)."""
        if self._where is None and self.index is not None:
            where: list[tuple[bool, Loc, int]] = []
            for is_key, table in ((False, self.index.values), (True, self.index.keys)):
                for loc, spot in table.items():
                    if loc[:1] == ("scenes",) and len(loc) > 1:
                        continue
                    if not isinstance(spot, int):
                        self.index = None
                        return None
                    where.append((is_key, loc, spot))
            self._where, self.index = tuple(where), None
        return self._where


@dataclass(frozen=True)
class _SceneCache:
    """Validated scenes of one load, by their text, under one validation context."""

    context: tuple[Any, ...]
    by_text: dict[bytes, Any]  # scene text -> the validated Scene
    file: _FileMap | None = None


# Folders besides the show's own that loads may read (``--allow-path``), for the loads of a run
# that do not name them: the hot reload loads in tasks and threads the run starts, which
# inherit this context.
_ALLOWED: ContextVar[tuple[Path, ...]] = ContextVar("showrunner_allowed_folders", default=())


@contextmanager
def allowed_folders(folders: Iterable[str | Path]) -> Iterator[None]:
    """Inside this block (and the tasks and threads started in it), loads may also read `folders`."""
    token = _ALLOWED.set(tuple(Path(f) for f in folders))
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def load(
    path: str | Path,
    *,
    previous: LoadResult | None = None,
    allow: Iterable[str | Path] | None = None,
) -> LoadResult:
    """Load and validate a show file; raises ShowErrors listing every problem found.

    Included files and image assets are read only inside the show's folder (and its
    subfolders) and the `allow` folders (default: those of the enclosing `allowed_folders`).

    `previous` (a load of the same file, e.g. the version playing) lets scenes whose text did not
    change be re-used as validated, without building them again (hot reload of a big show). The
    result is the same as without it; a version with any problem is loaded again from scratch,
    so its errors are positioned exactly.
    """
    display = str(path)
    source = Path(path)
    try:
        text = _read(source, ReadPolicy(limit=MAX_FILE_BYTES))  # the user named this file
    except _FileProblem as problem:
        raise ShowErrors([ShowError(problem.message, path=display, line=problem.line,
                                    col=problem.col)]) from None
    policy = ReadPolicy.for_show(source, _ALLOWED.get() if allow is None else allow,
                                 limit=MAX_FILE_BYTES)
    reuse = previous._scenes if previous is not None and previous.path == Path(display) else None
    if reuse is not None and previous is not None:
        if reuse.file is not None:
            quick = _Loader(display, source.parent, source, policy, reuse).one_scene(
                text, previous.show.scenes)
            if quick is not None:
                return quick
        try:
            return _Loader(display, source.parent, source, policy, reuse).run(text)
        except ShowErrors:
            pass  # loaded again without re-use: exact positions in every scene
    return _Loader(display, source.parent, source, policy).run(text)


def load_show(path: str | Path, *, allow: Iterable[str | Path] | None = None) -> Show:
    """Load and validate a show file; raises ShowErrors listing every problem found."""
    return load(path, allow=allow).show


def load_text(text: str, *, path: str = "<string>", base_dir: Path | None = None,
              allow: Iterable[str | Path] | None = None) -> LoadResult:
    """Load a show from text; includes and asset files are looked up (and confined) under `base_dir`.

    There is no size limit here: bombs are stopped by counting nodes, values and nesting."""
    base = base_dir if base_dir is not None else Path.cwd()
    policy = ReadPolicy.for_folder(base, _ALLOWED.get() if allow is None else allow,
                                   limit=MAX_FILE_BYTES)
    return _Loader(path, base, None, policy).run(text)


def source_location(result_or_path: LoadResult | str | Path, key_path: Loc) -> tuple[str, int, int]:
    """(file, line, col) of the value at `key_path` (or of its nearest written parent)."""
    result = result_or_path if isinstance(result_or_path, LoadResult) else load(result_or_path)
    pos = result._index.value(tuple(key_path))
    return pos.path, pos.line, pos.col


def key_location(result: LoadResult, key_path: Loc) -> tuple[str, int, int]:
    """(file, line, col) of the mapping key that ends `key_path` (of its value if none)."""
    pos = result._index.key(tuple(key_path))
    return pos.path, pos.line, pos.col


def read_yaml(path: str | Path) -> Any:
    """The plain data of a YAML file as written (no templates, no includes, no validation)."""
    display = str(path)
    try:
        text = _read(Path(path), ReadPolicy(limit=MAX_FILE_BYTES))
    except _FileProblem as problem:
        raise ShowErrors([ShowError(problem.message, path=display, line=problem.line,
                                    col=problem.col)]) from None
    builder = _Builder(_Index(display), _Templates())
    with _paused_gc():
        root = builder.parse(text, display)
        try:
            data = None if root is None else builder.build(root, (), display, None)
        except (_TooBig, _TooDeep) as big:
            builder.errors.append(_too_many(big))
    if builder.errors:
        raise ShowErrors(_sorted(builder.errors, [display]))
    return data


def format_key_path(loc: Loc) -> str:
    """("scenes", 2, "transition") -> "scenes[2].transition"."""
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", item):
            out += f".{item}" if out else item
        else:
            out += f"[{item!r}]"
    return out


def note_at(result: LoadResult, key_path: Loc) -> str:
    """The generator note ("(each mood='rain')") of a generated value, else ""."""
    return result._index.value(tuple(key_path)).note


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


@contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading: parsing and building make hundreds of
    thousands of small acyclic objects, and the collector would rescan the growing heap again and
    again (it more than doubled the load of a 10,000-scene show). Reference counting still frees
    everything; cycles are collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _FileProblem(Exception):
    """`kind` is a FileProblem's kind, or "content" for a file read but not usable."""

    def __init__(self, message: str, line: int = 1, col: int = 1, kind: str = "content") -> None:
        super().__init__(message)
        self.message, self.line, self.col, self.kind = message, line, col, kind


def _too_large(size: int) -> str:
    return (f"file is too large ({size / 1e6:.1f} MB; a show file may be at most "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MiB)")


def _read(path: Path, policy: ReadPolicy) -> str:
    """The text of a show file or include: a regular file under `policy` (show/files.py)."""
    try:
        data = read_bytes(path, policy)
    except FileTooLarge as exc:
        raise _FileProblem(_too_large(exc.size), kind=exc.kind) from None
    except FileProblem as exc:
        message = "is a directory, not a show file" if exc.kind == "directory" else exc.message
        raise _FileProblem(message, kind=exc.kind) from None
    if b"\x00" in data:  # line numbers mean nothing in binary data: point at the start
        raise _FileProblem("not a text file (binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        raise _FileProblem("not a UTF-8 text file (invalid byte)", line, col) from None


def _line_col(data: bytes | str, offset: int) -> tuple[int, int]:
    before = data[:offset]
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    line = before.count(newline) + 1
    return line, offset - (before.rfind(newline) + 1) + 1


# ---------------------------------------------------------------------------------------------
# YAML nodes -> data
# ---------------------------------------------------------------------------------------------


def _tag_text(node: Node) -> str:
    tag = node.tag
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


def _pos(node: Node, path: str, note: str = "") -> _Pos:
    return _Pos(path, node.line, node.col, note)


def _is_map(node: Node | None) -> bool:
    return node is not None and node.kind == MAP


def _is_seq(node: Node | None) -> bool:
    return node is not None and node.kind == SEQ


def _is_scalar(node: Node | None) -> bool:
    return node is not None and node.kind == SCALAR


def _kind(node: Node) -> str:
    if node.kind == MAP:
        return "a mapping"
    if node.kind == SEQ:
        return "a list"
    return f"text ({short(node.value)})"


_CONTAINER_TAGS = {MAP: MAP_TAG, SEQ: SEQ_TAG}


class _Builder:
    """Builds plain data from nodes, recording positions and collecting problems."""

    def __init__(self, index: _Index, env: _Templates) -> None:
        self.index = index
        self.env = env
        self.errors: list[ShowError] = []
        self.poisoned: list[Loc] = []  # values already reported; later errors there are echoes
        self.count = 0
        self.limit = MAX_VALUES  # grows by the nodes written in each file parsed
        self.depth = 0  # containers being built (aliases can nest deeper than the text)
        self.last_data: bytes | None = None  # the UTF-8 text last parsed (fast path)
        self.unread: set[str] = set()  # include names whose file could not be read (reported)

    # -- problems ------------------------------------------------------------------------------

    def error(self, message: str, pos: _Pos, loc: Loc, *, poison: bool = True) -> None:
        text = f"{message} {pos.note}" if pos.note else message
        self.errors.append(ShowError(text, path=pos.path, line=pos.line, col=pos.col,
                                     key_path=format_key_path(loc)))
        if poison:
            self.poisoned.append(loc)

    # -- parsing -------------------------------------------------------------------------------

    def parse(self, text: str, path: str, skip: Container[bytes] = (), *,
              plain: bool = False) -> Node | None:
        """Text -> one YAML node; a syntax error is recorded and gives None. `plain`: plain
        scenes come as data (PLAIN_TAG, see _Loader._scenes)."""
        try:
            parsed = compose(text, skip=skip, plain="scenes" if plain else None,
                             refuse=_SCENE_BLOCKS)
        except YamlProblem as problem:
            self.errors.append(ShowError(problem.message, path=path, line=problem.line,
                                         col=problem.col))
            return None
        except TooManyNodes as big:
            self.errors.append(ShowError(
                f"too many values (more than {MAX_NODES} in one file)", path=path,
                line=big.line, col=big.col))
            return None
        self.limit += parsed.count
        self.last_data = parsed.data
        if path == self.index.main:
            self.index.lines = parsed.lines
        return parsed.root

    # -- building ------------------------------------------------------------------------------

    def build(
        self, node: Node, loc: Loc, path: str, ctx: dict[str, Any] | None, note: str = ""
    ) -> Any:
        """Node -> data at `loc`; `ctx` None means no templating (raw data)."""
        self.count += 1
        if self.count > self.limit:
            raise _TooBig(_pos(node, path, note), self.limit)
        index = self.index
        values = index.values
        if loc not in values:
            if note == "" and path == index.main:
                values[loc] = node.off if index.lines is not None and node.off >= 0 else node
            else:
                values[loc] = (node, path, note)
        kind, tag = node.kind, node.tag
        if kind == SCALAR:
            if tag == STR_TAG:
                value: Any = node.value
            else:
                if tag not in _PLAIN_TAGS:
                    self.error(f"tag {_tag_text(node)!r} is not allowed; show files hold plain data",
                               _pos(node, path, note), loc)
                value = self.scalar(node, path, note, loc)
            if ctx is not None and isinstance(value, str) and ("{{" in value or "{%" in value):
                return self.render(value, ctx, _pos(node, path, note), loc)
            return value
        if tag != _CONTAINER_TAGS[kind]:
            self.error(f"tag {_tag_text(node)!r} is not allowed; show files hold plain data",
                       _pos(node, path, note), loc)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(_pos(node, path, note))
            if kind == MAP:
                build = self.build
                pairs = node.value
                if len({k.value for k, _ in pairs if k.kind == SCALAR and k.tag == STR_TAG}) \
                        == len(pairs):
                    return self._plain_mapping(pairs, loc, path, ctx, note)
                return {key: build(value_node, (*loc, key), path, ctx, note)
                        for key, _, value_node in self.items(node, loc, path, note)}
            build = self.build
            return [build(item, (*loc, i), path, ctx, note) for i, item in enumerate(node.value)]
        finally:
            self.depth -= 1

    def items(self, node: Node, loc: Loc, path: str, note: str = "") -> list[tuple[str, Node, Node]]:
        """A mapping's (key, key node, value node) in file order, merges (<<) applied."""
        out: dict[str, tuple[Node, Node]] = {}
        merged: list[tuple[str, Node, Node]] = []
        keys = self.index.keys
        for key_node, value_node in node.value:
            if key_node.kind == SCALAR and key_node.tag == STR_TAG:
                key = key_node.value
            else:
                if key_node.tag == _MERGE_TAG:
                    merged.extend(self._merge_sources(value_node, loc, path, note))
                    continue
                if key_node.kind != SCALAR:
                    self.error(f"a key must be text, not {_kind(key_node)}",
                               _pos(key_node, path, note), loc, poison=False)
                    continue
                key = str(key_node.value)
                if key_node.tag not in _PLAIN_TAGS:
                    self.error(f"tag {_tag_text(key_node)!r} is not allowed; show files hold plain "
                               "data", _pos(key_node, path, note), loc, poison=False)
                    self.poisoned.append((*loc, key))
            if key in out:
                first = out[key][0].line
                self.error(f"duplicate key {key!r} (first set on line {first})",
                           _pos(key_node, path, note), loc, poison=False)
                continue
            out[key] = (key_node, value_node)
            key_loc = (*loc, key)
            if key_loc not in keys:
                keys[key_loc] = self._key_spot(key_node, path, note)
        for key, key_node, value_node in merged:
            if key not in out:
                out[key] = (key_node, value_node)
                key_loc = (*loc, key)
                if key_loc not in keys:
                    keys[key_loc] = self._key_spot(key_node, path, note)
        return [(key, k, v) for key, (k, v) in out.items()]

    def _plain_mapping(self, pairs: list[tuple[Node, Node]], loc: Loc, path: str,
                       ctx: dict[str, Any] | None, note: str) -> dict[str, Any]:
        """A mapping whose keys are all distinct plain text (no merges): what items() and
        build() do, in one pass."""
        index = self.index
        keys, build = index.keys, self.build
        offsets = note == "" and path == index.main and index.lines is not None
        out: dict[str, Any] = {}
        for key_node, value_node in pairs:
            key = key_node.value
            key_loc = (*loc, key)
            if key_loc not in keys:
                keys[key_loc] = key_node.off if offsets and key_node.off >= 0 else \
                    self._key_spot(key_node, path, note)
            out[key] = build(value_node, key_loc, path, ctx, note)
        return out

    def _key_spot(self, node: Node, path: str, note: str) -> _Spot:
        index = self.index
        return index.spot(node) if note == "" and path == index.main else (node, path, note)

    def _merge_sources(self, node: Node, loc: Loc, path: str, note: str) -> Iterator[tuple[str, Node, Node]]:
        sources = node.value if node.kind == SEQ else [node]
        for source in sources:
            if source.kind != MAP:
                self.error("`<<` merges a mapping (or a list of mappings)", _pos(source, path, note),
                           loc)
                continue
            yield from self.items(source, loc, path, note)

    def scalar(self, node: Node, path: str, note: str, loc: Loc) -> Any:
        tag, text = node.tag, str(node.value)
        try:
            if tag == _INT_TAG:
                return yaml_int(text)
            if tag == _FLOAT_TAG:
                return yaml_float(text)
        except ValueError:
            kind = "integer" if tag.endswith("int") else "number"
            big = re.fullmatch(r"[-+]?[0-9_]{300,}", text)
            self.error("number is too large" if big else f"{text!r} is not a valid {kind}",
                       _pos(node, path, note), loc)
            return text
        if tag == _BOOL_TAG:
            if text.lower() not in ("true", "false"):
                self.error(f"{text!r} is not true or false", _pos(node, path, note), loc)
                return text
            return text.lower() == "true"
        if tag == _NULL_TAG:
            return None
        return text  # str, timestamps (kept as written) and rejected tags

    def render(self, text: str, ctx: dict[str, Any], pos: _Pos, loc: Loc) -> Any:
        """Render a templated string; one `{{ expr }}` keeps the expression's own type."""
        from showrunner.show.templating import (
            TEMPLATE_FAILURES,
            LoadTooCostly,
            TemplateProblem,
            template_message,
            undefined_name,
        )

        try:
            return self.env.sandbox.render_value(text, ctx, MAX_VALUES)
        except LoadTooCostly as exc:  # every later template would fail too: stop the load here
            self.error(str(exc), pos, loc)
            raise _Stop from None
        except TemplateProblem as exc:
            self.error(str(exc), pos, loc)
        except TEMPLATE_FAILURES as exc:
            if undefined_name(exc) in self.unread:  # an echo of the include's own error
                self.poisoned.append(loc)
            else:
                self.error(template_message(exc, ctx), pos, loc)
        except MemoryError:  # the limits should make this impossible; never a traceback
            self.error("template is too costly (out of memory)", pos, loc)
        return text


class _Templates:
    """The jinja2 sandbox of one load, made when its first template is rendered."""

    def __init__(self) -> None:
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            from showrunner.show.templating import make_env

            self._sandbox = make_env()
        return self._sandbox


class _Stop(Exception):
    """The load cannot go on; its reason is already among the errors."""


class _TooBig(Exception):
    def __init__(self, pos: _Pos, limit: int = MAX_VALUES) -> None:
        super().__init__("too many values")
        self.pos = pos
        self.limit = limit


class _TooDeep(Exception):
    def __init__(self, pos: _Pos) -> None:
        super().__init__("nesting too deep")
        self.pos = pos


def _too_many(big: _TooBig | _TooDeep) -> ShowError:
    pos = big.pos
    if isinstance(big, _TooDeep):
        return ShowError(f"nesting is deeper than {MAX_DEPTH} levels (through aliases)",
                         path=pos.path, line=pos.line, col=pos.col)
    return ShowError(
        f"too many values (more than {big.limit} after expanding aliases and generators)",
        path=pos.path, line=pos.line, col=pos.col,
    )


# ---------------------------------------------------------------------------------------------
# The show: vars, includes, generators, then validation
# ---------------------------------------------------------------------------------------------


class _Loader:
    def __init__(self, display: str, base: Path, source: Path | None, policy: ReadPolicy,
                 reuse: _SceneCache | None = None) -> None:
        self.reuse = reuse
        self.spans: dict[int, bytes] = {}  # scenes[i] -> its text, for the next load's re-use
        self.text: bytes | None = None  # the main file as parsed (fast path only)
        self.display = display
        self.base = base
        self.policy = policy  # where includes and assets may be read from
        self.files: list[Path] = [source.resolve()] if source is not None else []
        self.index = _Index(display)
        self.b = _Builder(self.index, _Templates())
        self.paths: list[str] = [display]  # display paths in the order met, to sort errors
        self.scenes_broken = False
        self.context: tuple[Any, ...] | None = None
        self.items: list[int] | None = None  # where the main file's scene items start
        self.top: list[tuple[str, int]] = []  # the main file's top-level keys and their offsets

    def run(self, text: str) -> LoadResult:
        with _paused_gc():
            return self._run_all(text)

    def one_scene(self, text: str, scenes: list[Any]) -> LoadResult | None:
        """The load of `text` when it differs from the re-used load's only inside one scene's
        text: that scene is read alone and every other value is the one already validated.
        None when that does not apply or anything is wrong (the full load says what)."""
        assert self.reuse is not None and self.reuse.file is not None
        with _paused_gc():
            return _SceneEdit(self, self.reuse, self.reuse.file).run(text.encode("utf-8"), scenes)

    def _run_all(self, text: str) -> LoadResult:
        data: dict[str, Any] = {}
        try:
            show = self._run(text, data)
        except (_TooBig, _TooDeep) as big:
            self.b.errors.append(_too_many(big))
            show = None
        except _Stop:
            show = None
        if self.b.errors or show is None:
            raise ShowErrors(_sorted(self.b.errors, self.paths))
        cache = None
        if self.spans and self.context is not None:
            scenes = show.scenes
            cache = _SceneCache(self.context, {text: scenes[i] for i, text in self.spans.items()},
                                self._file_map(data))
        return LoadResult(show, Path(self.display), tuple(dict.fromkeys(self.files)), self.index,
                          cache)

    def _file_map(self, data: dict[str, Any]) -> _FileMap | None:
        """The map for the next edit's one-scene path, when every scene is plain text here."""
        items, text = self.items, self.text
        if items is None or text is None or len(self.paths) > 1 or \
                len(self.spans) != len(items) or len(data.get("scenes", ())) != len(items):
            return None
        keys = tuple(key for key, _ in self.top)
        top = {key: value for key, value in data.items() if key != "scenes"}
        after = [off for _, off in self.top if off > items[-1]]
        end = text.rfind(b"\n", 0, min(after)) + 1 if after else len(text)
        return _FileMap(text, items, end, keys, top, self.index)

    def _run(self, text: str, out: dict[str, Any]) -> Show | None:
        # Scenes whose text the version playing had are not even read (see _scenes).
        skip = self.reuse.by_text if self.reuse is not None else ()
        root = self.b.parse(text, self.display, skip, plain=True)
        self.text = self.b.last_data
        if root is None:
            if not self.b.errors:
                self.b.errors.append(ShowError(f"the file is empty; {_SHAPE}", path=self.display))
            return None
        if not _is_map(root):
            self.b.error(f"the top level is {_kind(root)}; {_SHAPE}", _pos(root, self.display), ())
            return None
        data = self._top(root)
        del root  # the index keeps offsets: the parsed tree is freed before validating
        out.update(data)
        self._check_assets(data)
        show = self._validate(data)
        if show is not None and not self.scenes_broken:
            for loc, message in semantic_problems(show):
                if loc[-1:] == (KEY,):  # about the key itself: point at the key
                    self.b.error(message, self.index.key(loc[:-1]), loc[:-1], poison=False)
                else:
                    self._problem(tuple(loc), message)
        return show

    def _top(self, root: Node) -> dict[str, Any]:
        self.index.values[()] = self.index.spot(root)
        items = self.b.items(root, (), self.display)
        self.top = [(key, key_node.off) for key, key_node, _ in items]
        ctx: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for key, _, node in items:  # includes first: vars may use them
            if key == "include":
                data[key] = self._libraries(node, ctx)
        for key, _, node in items:
            if key == "vars":
                data[key] = self._vars(node, ctx)
        self.context = _context_key(items)
        for key, _, node in items:
            if key == "scenes" and _is_seq(node):
                self.index.values.setdefault(("scenes",), self.index.spot(node))
                data[key] = []
                self._scenes(node, self.display, self.base, ctx, data[key], ())
            elif key not in ("include", "vars"):
                data[key] = self.b.build(node, (key,), self.display, ctx)
        return {key: data[key] for key, _, _ in items if key in data}

    def _libraries(self, node: Node, ctx: dict[str, Any]) -> Any:
        raw = self.b.build(node, ("include",), self.display, None)
        if not isinstance(raw, dict):
            return raw  # validation reports the type
        for name, rel in raw.items():
            loc: Loc = ("include", name)
            pos = self.index.value(loc)
            if not isinstance(rel, str):
                continue
            if not _IDENT.match(name):
                self.b.error(f"{name!r} cannot be a template variable name", self.index.key(loc),
                             ("include",))
                continue
            sub = self._open(rel, self.base, pos, loc, ())
            if sub is None:
                self.b.unread.add(name)
                continue
            _, display, sub_root = sub
            ctx[name] = None if sub_root is None else self._raw(sub_root, display)
        return raw

    def _raw(self, node: Node, display: str) -> Any:
        """Data of an included library; its positions belong to its own file, not the show."""
        scratch = _Builder(_Index(display), self.b.env)
        scratch.count = self.b.count
        value = scratch.build(node, (), display, None)
        self.b.count = scratch.count
        self.b.errors.extend(scratch.errors)
        return value

    def _vars(self, node: Node, ctx: dict[str, Any]) -> Any:
        if not _is_map(node):
            return self.b.build(node, ("vars",), self.display, None)
        self.index.values.setdefault(("vars",), self.index.spot(node))
        out: dict[str, Any] = {}
        for key, key_node, value_node in self.b.items(node, ("vars",), self.display):
            if key in ctx and key not in out:
                self.b.error(f"{key!r} is already an `include` name", _pos(key_node, self.display),
                             ("vars",))
            if not _IDENT.match(key):
                self.b.error(f"{key!r} cannot be a template variable name (use letters, digits, _)",
                             _pos(key_node, self.display), ("vars",))
            # Earlier vars (and includes) are visible to later ones, in file order.
            out[key] = self.b.build(value_node, ("vars", key), self.display, dict(ctx))
            ctx[key] = out[key]
        return out

    # -- scenes --------------------------------------------------------------------------------

    def _scenes(self, seq: Node, path: str, base: Path, ctx: dict[str, Any],
                out: list[Any], chain: tuple[Path, ...]) -> None:
        items = seq.value
        spans = self._spans(items) if path == self.display and not chain else None
        if spans is not None and all(span is not None for span in spans):
            self.items = [item.off for item in items]
        reuse = self.reuse.by_text if (self.reuse is not None and self.context is not None
                                       and self.reuse.context == self.context) else {}
        ends = self._ends(items) if items and any(item.tag == PLAIN_TAG for item in items) else []
        for index, item in enumerate(items):
            if item.tag == PLAIN_TAG:
                self._plain_scene(item, ends[index], spans[index] if spans else None, reuse, out)
                continue
            keys = {str(k.value) for k, _ in item.value} if _is_map(item) and any(
                k.value in ("include", "each") for k, _ in item.value) else ()
            # Problems of an include or each block itself name the item as written in its file.
            if "include" in keys:
                self._scene_include(item, ("scenes", index), path, base, ctx, out, chain)
            elif "each" in keys:
                self._each(item, ("scenes", index), path, ctx, out)
            else:
                span = spans[index] if spans is not None else None
                if span is not None:
                    self.spans[len(out)] = span
                    scene = reuse.get(span)
                    if scene is not None:  # the same text as in the version playing
                        self.index.values.setdefault(("scenes", len(out)), self.index.spot(item))
                        out.append(scene)
                        continue
                out.append(self.b.build(item, ("scenes", len(out)), path, ctx))

    def _plain_scene(self, item: Node, end: int, span: bytes | None, reuse: dict[bytes, Any],
                     out: list[Any]) -> None:
        """A scene the parser built as plain data: its positions are read when asked for."""
        data, count = item.value
        b, k = self.b, len(out)
        b.count += count
        if b.count > b.limit:
            raise _TooBig(_pos(item, self.display), b.limit)
        self.index.values.setdefault(("scenes", k), item.off)
        if span is not None:
            self.spans[k] = span
            data = reuse.get(span, data)  # the same text as in the version playing
        self.index.later[k] = (item.off, end)
        out.append(data)

    def _ends(self, items: list[Node]) -> list[int]:
        """Where each item's text ends: at the start of the line of the next item's `-`; the
        last one's at the line of the next top-level key, or the end of the file."""
        data = self.text
        assert data is not None
        ends = []
        for item in items[1:]:
            line = data.rfind(b"\n", 0, item.off) + 1
            if not _ITEM_START.fullmatch(data, line, item.off):  # `-` on a line above
                line = _dash_line(data, line)
            ends.append(line)
        after = [off for _, off in self.top if off > items[-1].off]
        return [*ends, data.rfind(b"\n", 0, min(after)) + 1 if after else len(data)]

    def _spans(self, items: list[Node]) -> list[bytes | None] | None:
        """Each scene's text (to its next sibling), where re-using it is safe: plain text, no
        templates and no aliases or merges (their meaning is written elsewhere). A scene built
        straight into data is such a text, and so is one the parser skipped (a text kept
        here before)."""
        data = self.text
        if data is None or not items or any(item.off < 0 for item in items):
            return None
        ends = [item.off for item in items[1:]] + [len(data)]
        out: list[bytes | None] = []
        for item, end in zip(items, ends, strict=True):
            span = data[item.off:end]
            unsafe = item.tag not in _KEPT and (
                b"{{" in span or b"{%" in span or b"*" in span or b"<<" in span
                or b"&" in span)  # an anchor there may be used elsewhere: read it
            out.append(None if unsafe else span)
        return out

    def _scene_include(self, item: Node, loc: Loc, path: str, base: Path,
                       ctx: dict[str, Any], out: list[Any], chain: tuple[Path, ...]) -> None:
        fields = self._block_items(item, loc, path)
        for key, key_node, _ in fields:
            if key != "include":
                self.b.error(f"unknown key {key!r} next to `include` (an include item takes only "
                             "`include: file.yaml`)", _pos(key_node, path), loc, poison=False)
        node = next(v for k, _, v in fields if k == "include")
        if not _is_scalar(node) or not isinstance(node.value, str):
            self.b.error("`include` needs a file name", _pos(node, path), (*loc, "include"))
            self.scenes_broken = True
            return
        sub = self._open(str(node.value), base, _pos(node, path), (*loc, "include"), chain)
        if sub is None:
            self.scenes_broken = True
            return
        sub_path, display, root = sub
        if root is not None and _is_map(root):
            inner = [v for k, _, v in self._block_items(root, (), display) if k == "scenes"]
            root = inner[0] if inner else None
        if root is None or not _is_seq(root):
            self.b.error("an included scenes file must be a list of scenes or a mapping with "
                         "`scenes:` (a list)", _pos(node, path), (*loc, "include"))
            self.scenes_broken = True
            return
        self._scenes(root, display, sub_path.parent, ctx, out, (*chain, sub_path))

    def _block_items(self, node: Node, loc: Loc, path: str) -> list[tuple[str, Node, Node]]:
        """Keys of an include/each block: checked, but not positions of the built data."""
        saved, self.b.index = self.b.index, _Index(path)
        try:
            return self.b.items(node, loc, path)
        finally:
            self.b.index = saved

    def _open(self, rel: str, base: Path, pos: _Pos, loc: Loc,
              chain: tuple[Path, ...]) -> tuple[Path, str, Node | None] | None:
        """Read and parse an included file; problems are reported at the include."""
        target = _resolve(base, rel)
        if target is None:
            self.b.error(f"{short(rel)} is not a valid file name", pos, loc)
            return None
        parent_display = pos.path
        display = rel if Path(rel).is_absolute() else _join_display(parent_display, rel)
        here = self.files[0] if self.files else None
        if target in chain or target == here:
            names = [p.name for p in (here, *chain) if p is not None]
            self.b.error(f"include cycle: {' -> '.join([*names, target.name])}", pos, loc)
            return None
        try:
            text = _read(target, self.policy)
        except _FileProblem as problem:
            if problem.kind in _INCLUDE_PROBLEMS:  # not a file that may be read: say so here
                self.b.error(_INCLUDE_PROBLEMS[problem.kind].format(rel=rel, problem=problem),
                             pos, loc)
            else:  # the file is there but unusable: say so at the file itself
                self.b.errors.append(ShowError(problem.message, path=display, line=problem.line,
                                               col=problem.col))
            return None
        self.files.append(target)
        if display not in self.paths:
            self.paths.append(display)
        root = self.b.parse(text, display)
        if root is None and any(e.path == display for e in self.b.errors):
            return None
        return target, display, root

    def _each(self, item: Node, loc: Loc, path: str, ctx: dict[str, Any],
              out: list[Any]) -> None:
        fields = {k: (kn, v) for k, kn, v in self._block_items(item, loc, path)}
        for key, (key_node, _) in fields.items():
            if key not in ("each", "as", "scene"):
                hint = difflib.get_close_matches(key, ["each", "as", "scene"], n=1)
                suffix = f"; did you mean {hint[0]!r}?" if hint else " (use each, as, scene)"
                self.b.error(f"unknown key {key!r} in an `each` block{suffix}",
                             _pos(key_node, path), loc, poison=False)
        name = "item"
        if "as" in fields:
            as_node = fields["as"][1]
            name = str(as_node.value) if _is_scalar(as_node) else ""
            if not _IDENT.match(name) or name == "loop":
                self.b.error("`as` needs a variable name (letters, digits, _; not 'loop')",
                             _pos(as_node, path), (*loc, "as"))
                self.scenes_broken = True
                return
        if "scene" not in fields or not _is_map(fields["scene"][1]):
            where = fields["scene"][1] if "scene" in fields else item
            self.b.error("an `each` block needs `scene:`, a mapping used as the scene template",
                         _pos(where, path), loc, poison=False)
            self.scenes_broken = True
            return
        values = self._each_values(fields["each"][1], path, ctx, loc)
        if values is None:
            self.scenes_broken = True
            return
        template = fields["scene"][1]
        for i, value in enumerate(values):
            loop = {"index": i + 1, "index0": i, "first": i == 0, "last": i == len(values) - 1,
                    "length": len(values), "revindex": len(values) - i,
                    "revindex0": len(values) - i - 1}
            shown = short(value)
            note = f"(each {name}={shown})" if shown[:2] != "a " else f"(each {name} #{i + 1})"
            scene_ctx = {**ctx, name: value, "loop": loop}
            out.append(self.b.build(template, ("scenes", len(out)), path, scene_ctx, note))

    def _each_values(self, node: Node, path: str, ctx: dict[str, Any], loc: Loc) -> list[Any] | None:
        pos = _pos(node, path)
        saved, self.b.index = self.b.index, _Index(path)
        try:
            before = len(self.b.errors)
            value = self.b.build(node, (*loc, "each"), path, ctx)
        finally:
            self.b.index = saved
        if len(self.b.errors) > before:
            return None
        count = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, dict):
            value = [{"key": k, "value": v} for k, v in value.items()]
        if not isinstance(value, list) and (count is None or count < 0):
            self.b.error(f"`each` needs a list, a count or a template giving one "
                         f"(got {short(value)})", pos, (*loc, "each"))
            return None
        size = count if count is not None else len(value)
        if size > MAX_EACH:
            self.b.error(f"`each` would make {size} scenes; the limit is {MAX_EACH}", pos,
                         (*loc, "each"))
            return None
        return list(range(count)) if count is not None else value

    # -- checks --------------------------------------------------------------------------------

    def _check_assets(self, data: dict[str, Any]) -> None:
        """Local asset files must exist next to the show file (uploaded at run time)."""
        assets = data.get("assets")
        images = assets.get("images") if isinstance(assets, dict) else None
        if not isinstance(images, dict):
            return
        for name, spec in images.items():
            loc: Loc = ("assets", "images", name)
            rel = spec
            if isinstance(spec, dict):
                rel, loc = spec.get("file"), (*loc, "file")
            if not isinstance(rel, str) or not rel:
                continue
            target = _resolve(self.base, rel)
            if target is None:
                self._problem(loc, f"{short(rel)} is not a valid file name")
                continue
            try:  # uploaded at run time, so it must be one that may be read
                self.files.append(check_file(target, self.policy))
            except FileProblem as problem:
                message = _ASSET_PROBLEMS.get(problem.kind, "{rel!r}: {what}")
                what = problem.message.replace("a regular file", "an image file")
                self._problem(loc, message.format(rel=rel, what=what))

    def _validate(self, data: dict[str, Any]) -> Show | None:
        try:
            return Show.model_validate(data, context=_context(data))
        except ValidationError as exc:
            bad: list[Loc] = []
            for loc, is_key, message in messages(exc.errors(), data):
                self._problem(loc, message, is_key=is_key)
                bad.append(loc[:-1] if is_key else loc)
            if not self.scenes_broken:
                self._more_problems(data, bad)
            return None

    def _more_problems(self, data: dict[str, Any], bad: list[Loc]) -> None:
        """Checks across scenes (names, gotos, prompt lists...) on the show without the values
        already reported, so one bad value does not hide the other problems of the file."""
        pruned = copy.deepcopy(data)
        for loc in bad:
            if not loc or not _prune(pruned, loc):
                return  # a required part is broken: the rest would only echo it
        try:
            show = Show.model_validate(pruned, context=_context(pruned))
        except ValidationError:
            return
        for loc, message in semantic_problems(show):
            own = tuple(loc[:-1]) if loc[-1:] == (KEY,) else tuple(loc)
            if any(own[: len(b)] == b or b[: len(own)] == own for b in bad):
                continue  # about a value already reported (or one that contains it)
            if loc[-1:] == (KEY,):
                self.b.error(message, self.index.key(own), own, poison=False)
            else:
                self._problem(own, message)

    def _problem(self, loc: Loc, message: str, *, is_key: bool = False) -> None:
        if any(loc[: len(p)] == p for p in self.b.poisoned):
            return
        if self.scenes_broken and loc == ("scenes",):
            return  # an include or generator failed; the scenes list is short because of it
        pos = self.index.key(loc) if is_key else self.index.value(loc)
        where = loc[:-1] if is_key else loc
        self.b.error(message, pos, where, poison=False)


_ITEM_START = re.compile(rb" *- +")  # a line's text before a list item's first key
_DASH_ALONE = re.compile(rb" *-[ ]*(?:#[^\n]*)?\r?\n")  # a list item's `-` on its own line
_NOTHING = re.compile(rb" *(?:#[^\n]*)?\r?\n")  # a blank or comment line


def _dash_line(data: bytes, line: int) -> int:
    """The start of the line of the `-` above the item whose first key starts the line at
    `line` (blank and comment lines between are passed); `line` when there is none."""
    at = line
    while at > 0:
        above = data.rfind(b"\n", 0, at - 1) + 1
        if _DASH_ALONE.fullmatch(data, above, at):
            return above
        if not _NOTHING.fullmatch(data, above, at):
            break
        at = above
    return line


def _common_prefix(a: bytes, b: bytes) -> int:
    """The length of the longest common prefix (slices compared in C, halving)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """The length of the longest common suffix, at most `limit`."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:len(a) - lo] == b[len(b) - mid:len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _SceneEdit:
    """An edit inside one scene's text of a plain file (_FileMap): the scene is parsed alone
    (indented as in the file), positions are moved by the edit's length, every other scene is
    the validated one, and only the edited scene's own checks run again."""

    def __init__(self, loader: _Loader, reuse: _SceneCache, file: _FileMap) -> None:
        self.loader, self.reuse, self.file = loader, reuse, file

    def run(self, new: bytes, previous: list[Any]) -> LoadResult | None:
        file, old = self.file, self.file.data
        where = file.where()
        if len(previous) != len(file.starts) or where is None:
            return None
        found = self._scene(old, new)
        if found is None:
            return None
        i, head, cut, col = found
        delta = len(new) - len(old)
        own = new[head:cut + delta]
        if cut < len(old) and not own.endswith(b"\n"):
            return None  # its last line now runs into the next one
        if b"{{" in own or b"{%" in own or b"*" in own or b"<<" in own or b"&" in own:
            return None  # as _Loader._spans: read the whole file
        for line in own.split(b"\n")[1:]:  # nothing may leave the scene's mapping
            body = line.lstrip(b" ")
            if body and not body.startswith(b"#") and len(line) - len(body) < col:
                return None
        loader = self.loader
        b = loader.b
        scratch = _Index(loader.display)
        b.index = scratch
        root = b.parse(" " * col + own.decode("utf-8"), loader.display)
        if root is None or root.kind != MAP or root.off != col or b.errors:
            return None
        raw = b.build(root, ("scenes", i), loader.display, {})
        b.index = loader.index
        if b.errors:
            return None
        lines = Lines(new)
        index = self._index(scratch, lines, i, head - col, delta, where)
        loader.index = b.index = index
        scenes: list[Any] = list(previous)
        old_scene, scenes[i] = scenes[i], raw
        data = {key: scenes if key == "scenes" else file.top[key] for key in file.keys}
        loader._check_assets(data)
        try:
            show = Show.model_validate(data, context=_context(data))
        except ValidationError:
            return None
        checked = {id(scene) for scene in scenes} - {id(show.scenes[i])}
        if b.errors or semantic_problems(show, checked):
            return None
        by_text = dict(self.reuse.by_text)
        end = file.starts[i + 1] if i + 1 < len(file.starts) else len(old)
        if by_text.get(old[head:end]) is old_scene:
            del by_text[old[head:end]]
        by_text[new[head:end + delta]] = show.scenes[i]
        moved = _FileMap(new, [*file.starts[:i + 1], *(s + delta for s in file.starts[i + 1:])],
                         file.end + delta, file.keys, file.top, None,
                         tuple((k, loc, o + delta if o >= head else o) for k, loc, o in where))
        cache = _SceneCache(self.reuse.context, by_text, moved)
        return LoadResult(show, Path(loader.display), tuple(dict.fromkeys(loader.files)), index,
                          cache)

    def _scene(self, old: bytes, new: bytes) -> tuple[int, int, int, int] | None:
        """(scene index, its text's start, end of its own text, its column - 1) of the one
        scene whose own text holds every changed byte; None when there is no such scene."""
        starts = self.file.starts
        p = _common_prefix(old, new)
        if p == len(old) == len(new):
            return None  # nothing changed in the text (an asset did): the full path
        s = _common_suffix(old, new, min(len(old), len(new)) - p)
        i = bisect.bisect_right(starts, p) - 1
        if i < 0:
            return None
        if i + 1 < len(starts):  # its own text ends where the next item's line starts
            cut = old.rfind(b"\n", 0, starts[i + 1]) + 1
            if cut <= starts[i] or not _ITEM_START.fullmatch(old, cut, starts[i + 1]):
                return None
        else:
            cut = self.file.end
        line = old.rfind(b"\n", 0, starts[i]) + 1
        if cut <= starts[i] or len(old) - s > cut or not _ITEM_START.fullmatch(old, line, starts[i]):
            return None
        return i, starts[i], cut, starts[i] - line

    def _index(self, scratch: _Index, lines: Lines, i: int, base: int, delta: int,
               where: tuple[tuple[bool, Loc, int], ...]) -> _Index:
        """Positions in the new text: the edited scene's from its own parse (moved to where it
        starts), every other scene's start and the values outside the scenes moved by `delta`."""
        index = _Index(self.loader.display, lines=lines)
        head = self.file.starts[i]
        for table, own in ((index.values, scratch.values), (index.keys, scratch.keys)):
            for loc, spot in own.items():
                if isinstance(spot, int):
                    table[loc] = spot + base
        for is_key, loc, off in where:
            table = index.keys if is_key else index.values
            table[loc] = off + delta if off >= head else off
        values = index.values
        for j, start in enumerate(self.file.starts):
            if j != i:
                values[("scenes", j)] = start + delta if j > i else start
        return index


def _prune(data: Any, loc: Loc) -> bool:
    """Remove the value at `loc` from `data` (False when it is not there or is required)."""
    node = data
    for item in loc[:-1]:
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            return False
    last = loc[-1]
    if isinstance(node, dict) and last in node and last not in ("name", "title", "scenes"):
        del node[last]
        return True
    return False


_OUTSIDE = "is outside the show's folder (allow its folder with --allow-path DIR)"
# How a problem of an included file is worded at the include (others are told at the file).
_INCLUDE_PROBLEMS = {
    "missing": "included file {rel!r} not found",
    "outside": "included file {rel!r} " + _OUTSIDE,
    "directory": "included file {rel!r} is a directory, not a file",
    "special": "included file {rel!r} {problem.message}",
    "name": "included file {rel!r}: {problem.message}",
}
_ASSET_PROBLEMS = {
    "missing": "file not found: {rel}",
    "outside": "image file {rel!r} " + _OUTSIDE,
    "directory": "{rel!r} is a directory, not an image file",
    "special": "{rel!r} {what}",
}


def _resolve(base: Path, rel: str) -> Path | None:
    """`base/rel` made absolute, or None for a name the OS cannot look up."""
    try:
        target = (base / rel).resolve()
        target.exists()  # raises for names that are too long
    except (OSError, ValueError):
        return None
    return target


def _join_display(parent: str, rel: str) -> str:
    """How to show an included file: next to the including file's path as the user gave it."""
    if parent.startswith("<"):
        return rel
    return os.path.normpath(os.path.join(os.path.dirname(parent), rel))


def _context_key(items: list[tuple[str, Node, Node]]) -> tuple[Any, ...] | None:
    """What a scene's validation reads besides its own text: bpm and beats per bar as written."""
    written = {key: node for key, _, node in items if key in ("bpm", "beats_per_bar")}
    if any(node.kind != SCALAR or "{" in node.value for node in written.values()):
        return None  # built from more than its own text: no re-use
    return tuple((key, node.tag, node.value) for key, node in sorted(written.items()))


def _context(data: dict[str, Any]) -> dict[str, Any]:
    """The validation context: bpm and beats per bar, read before the show is validated."""
    bpm = data.get("bpm")
    ctx: dict[str, Any] = {"bpm": None, "beats_per_bar": 4}
    if bpm is not None:
        try:
            value = float(bpm) if not isinstance(bpm, bool | list | dict) else None
        except (TypeError, ValueError, OverflowError):
            value = None
        if value is not None and 0 < value <= 999:
            ctx["bpm"] = value
        else:
            ctx["bpm_invalid"] = True
    bpb = data.get("beats_per_bar")
    if isinstance(bpb, int) and not isinstance(bpb, bool) and 1 <= bpb <= 16:
        ctx["beats_per_bar"] = bpb
    return ctx


def _sorted(errors: list[ShowError], paths: list[str]) -> list[ShowError]:
    """Errors in file order, then by position, each once and each on one line."""
    order = {p: i for i, p in enumerate(paths)}
    seen: set[str] = set()
    unique = []
    for e in errors:
        if "\n" in e.message:
            e = ShowError(" ".join(e.message.splitlines()), path=e.path, line=e.line, col=e.col,
                          key_path=e.key_path)
        # A template error repeats in every generated scene: report it for the first one.
        key = f"{e.path}:{e.line}:{e.col}:{_EACH_NOTE.sub('', e.message)}"
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return sorted(unique, key=lambda e: (order.get(e.path, len(order)), e.path, e.line, e.col))
