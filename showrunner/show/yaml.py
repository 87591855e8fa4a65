"""YAML text -> nodes, each with the exact line and column it was written at.

Two parsers give the same nodes:

- **rapidyaml** (C++, the fast path): parses a megabyte in about 15 ms. Its Python binding is
  called per node (about a microsecond a call, too slow for big shows), so the nodes are read
  straight from the library's node array through ctypes. That layout is checked against the
  binding's own accessors the first time, and the path is not used if it differs. Positions come
  from where each scalar lies in the buffer; a container's from its first key or its opening
  character.
- **ruamel.yaml** (pure Python, the exact path): the reference. It is used for every text the fast
  path does not take: a syntax error or anything rapidyaml might read differently (tabs, tags,
  several documents, directives, unusual line breaks, null list items, aliases to anchors not yet
  defined, nesting deeper than the limit), so every error message and position is ruamel's.

Both resolve plain scalars with ruamel's YAML 1.2 resolver, share an anchored node between its
aliases (nothing is expanded here: the builder counts what it expands), and count the nodes
written. Bombs are stopped by counting, not by file size: a text that could hold more than
`MAX_NODES` nodes never reaches rapidyaml (its tree needs about 150 bytes a node), and the
exact path stops composing after `MAX_NODES`.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import io
import os
import re
import threading
from collections.abc import Callable, Container
from typing import Any

import ruamel.yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.reader import Reader, ReaderError
from ruamel.yaml.resolver import VersionedResolver

__all__ = [
    "MAP",
    "MAX_DEPTH",
    "MAX_NODES",
    "PLAIN_TAG",
    "SCALAR",
    "SEQ",
    "SKIPPED_TAG",
    "Lines",
    "Node",
    "Parsed",
    "YamlProblem",
    "compose",
    "upsert_item",
    "yaml_float",
    "yaml_int",
]

MAX_DEPTH = 100  # nesting levels; deeper input is an error, not a RecursionError
MAX_NODES = 4_000_000  # nodes written in one file (an imported 100,000-scene show has ~1.3 M)

SCALAR, MAP, SEQ = 0, 1, 2
YAML_TAG = "tag:yaml.org,2002:"
STR_TAG, MAP_TAG, SEQ_TAG = YAML_TAG + "str", YAML_TAG + "map", YAML_TAG + "seq"


class YamlProblem(Exception):
    """The text is not YAML a show can use; line and col are 1-based."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.col = message, line, col


class TooManyNodes(Exception):
    """More than MAX_NODES nodes written; the position is where composing stopped."""

    def __init__(self, line: int, col: int) -> None:
        super().__init__("too many nodes")
        self.line, self.col = line, col


class Node:
    """One YAML node: `value` is the text of a scalar, a list of (key, value) nodes of a mapping
    or a list of nodes of a sequence. An alias is the anchored node itself."""

    __slots__ = ("_col", "_line", "_lines", "kind", "off", "tag", "value")

    def __init__(self, kind: int, tag: str, value: Any, line: int, col: int,
                 lines: Lines | None = None) -> None:
        self.kind = kind
        self.tag = tag
        self.value = value
        self._line = line  # with `lines`: a byte offset, made a line and column when asked
        self._col = col
        self._lines = lines
        self.off = line if lines is not None else -1  # the byte offset, when known

    @property
    def line(self) -> int:
        if self._lines is not None:
            self._resolve()
        return self._line

    @property
    def col(self) -> int:
        if self._lines is not None:
            self._resolve()
        return self._col

    def _resolve(self) -> None:
        lines = self._lines
        assert lines is not None
        self._line, self._col = lines.line_col(self._line)
        self._lines = None

    def __repr__(self) -> str:
        return f"Node({self.kind}, {self.tag!r}, {self.value!r}, {self.line}:{self.col})"


class Parsed:
    """The root node (None for an empty document), how many nodes the text holds and, from the
    fast path, the UTF-8 text (node offsets index into it) and its lines."""

    __slots__ = ("count", "data", "lines", "root")

    def __init__(self, root: Node | None, count: int, data: bytes | None = None) -> None:
        self.root = root
        self.count = count
        self.data = data
        self.lines: Lines | None = None


SKIPPED_TAG = "!showrunner/skipped"  # a list item left unread (`skip`): building it is an error
# A list item built straight into plain data (`plain`): the node's value is (data, how many
# values it holds), its position the item's first key; the positions inside are not kept.
PLAIN_TAG = "!showrunner/plain"


def compose(text: str, *, fast: bool = True, skip: Container[bytes] = (),
            plain: str | None = None, refuse: Container[str] = ()) -> Parsed:
    """Parse one YAML document; raises YamlProblem (positioned) or TooManyNodes.

    `fast=False` forces the exact (ruamel.yaml) path; tests compare the two. `skip`: texts of
    block-mapping list items the caller already has (a reload's unchanged scenes, from one item
    to the next); such items are not read and come back as an empty mapping tagged SKIPPED_TAG,
    placed at their first key. `plain`: a key of the top-level mapping whose list's block-mapping
    items the fast path builds straight into plain data (PLAIN_TAG), when they are plain data:
    no tags, anchors, aliases, merges, empty values, duplicate or non-text keys, keys in
    `refuse`, templates (``{{``, ``{%``) or values a show cannot hold; any other item is nodes.
    """
    if fast and _fast_allowed(text):
        parsed = _Fast.compose(text, skip, plain, refuse)
        if parsed is not None:
            return parsed
    return _exact(text)


def yaml_int(text: str) -> int:
    """A YAML 1.2 integer's value (ValueError when it has none)."""
    if text.isdigit() and text.isascii():
        return int(text)
    t = text.replace("_", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if t.lower().startswith(prefix):
            return sign * int(t[2:], base)
    return sign * int(t, 10)


def yaml_float(text: str) -> float:
    """A YAML 1.2 float's value (ValueError when it has none)."""
    t = text.replace("_", "").lower()
    if t in (".inf", "+.inf"):
        return float("inf")
    if t == "-.inf":
        return float("-inf")
    if t == ".nan":
        return float("nan")
    return float(t)


# ---------------------------------------------------------------------------------------------
# The exact path: ruamel.yaml, pure Python
# ---------------------------------------------------------------------------------------------


class _CountingComposer(Composer):
    """ruamel's composer, stopping after MAX_NODES nodes (memory stays bounded)."""

    count = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            mark = self.parser.peek_event().start_mark
            raise TooManyNodes(mark.line + 1, mark.column + 1)
        return super().compose_node(parent, index)


def _exact(text: str) -> Parsed:
    yaml = ruamel.yaml.YAML(typ="rt", pure=True)
    yaml.Composer = _CountingComposer
    yaml.max_depth = MAX_DEPTH
    yaml.composer.warn_double_anchors = False  # re-defining an anchor is valid YAML
    try:
        root = yaml.compose(text)
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark
        raise YamlProblem(f"nesting is deeper than {MAX_DEPTH} levels", mark.line + 1,
                          mark.column + 1) from None
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else 0
        raise YamlProblem(f"control character U+{char:04X} is not allowed in YAML", line,
                          col) from None
    except MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except YAMLError as exc:  # unmarked errors are rare; keep them one line
        raise YamlProblem(f"yaml error: {str(exc).splitlines()[0]}") from None
    count = yaml.composer.count
    if root is None or (isinstance(root, ScalarNode) and str(root.tag) == YAML_TAG + "null"
                        and root.value in ("", "~", "null")):
        return Parsed(None, count)
    return Parsed(_convert(root, {}), count)


def _convert(node: Any, seen: dict[int, Node]) -> Node:
    """ruamel nodes -> Nodes; an aliased node stays one shared Node."""
    done = seen.get(id(node))
    if done is not None:
        return done
    mark = node.start_mark
    if isinstance(node, MappingNode):
        out = Node(MAP, str(node.tag), [], mark.line + 1, mark.column + 1)
        seen[id(node)] = out
        out.value.extend((_convert(k, seen), _convert(v, seen)) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        out = Node(SEQ, str(node.tag), [], mark.line + 1, mark.column + 1)
        seen[id(node)] = out
        out.value.extend(_convert(item, seen) for item in node.value)
    else:
        value = str(node.value)
        if node.style == ">":  # ruamel's round-trip scanner marks each fold with a BEL
            value = value.replace("\a", "")
        out = Node(SCALAR, str(node.tag), value, mark.line + 1, mark.column + 1)
        seen[id(node)] = out
    return out


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


def _syntax_error(exc: MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    problem = str(exc.problem or exc.context or "invalid YAML")
    context = str(exc.context or "")
    if "'\\t'" in problem or "\t" in problem:
        message = "a tab character cannot indent YAML; use spaces"
    elif context.startswith("expected a single document"):
        message = "a show file holds one YAML document, but `---` starts another"
    elif problem.startswith("found undefined alias"):
        message = f"undefined alias {problem.split()[-1]} (define it with &name first)"
    else:
        message = problem
        cm = exc.context_mark
        if context and cm is not None and mark is not None and cm.line != mark.line:
            message += f" ({context} started on line {cm.line + 1})"
        elif context and exc.problem:
            message += f" ({context})"
    line = mark.line + 1 if mark is not None else 1
    col = mark.column + 1 if mark is not None else 1
    return YamlProblem(message[0].lower() + message[1:], line, col)


# ---------------------------------------------------------------------------------------------
# The fast path: rapidyaml, read through its node array
# ---------------------------------------------------------------------------------------------

# Texts the fast path leaves to ruamel: tabs, line breaks other than \n and \r\n, characters
# ruamel refuses, a BOM inside, directives and document markers after the first line.
# (Compiled when a text is not ASCII: ruamel's class of printable characters is large.)
@functools.cache
def _unsafe() -> re.Pattern[str]:
    return re.compile(
        r"\t|\r(?!\n)|[\x85\u2028\u2029\ufeff]|" + Reader.NON_PRINTABLE.pattern
        + r"|^(?:%|(?:---|\.\.\.)(?:[ \r\n]|$))", re.MULTILINE,
    )


_FIRST_LINE_MARKER = re.compile(r"---(?:[ \r\n]|$)")
# Each node starts at one of these (or at the start): a bound on how many nodes a text holds.
_NODE_STARTS = ("\n", ":", "-", ",", "[", "{", "?")
_HEADER_INDICATOR = re.compile(r"[|>][-+0-9]*[ ]*(?:#.*)?\r?$")
_DQ = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SQ = re.compile(r"'(?:[^']|'')*'", re.DOTALL)


# The same test for an ASCII text, in simpler scans (a fifth of the time on a big show).
# NON_PRINTABLE, in ASCII: [\x00-\x08\x0b\x0c\x0e-\x1f\x7f]. What is left of a text once these
# bytes are deleted is its control characters (a pass in C, a tenth of a regular expression's).
_ASCII_ALLOWED = bytes([9, 10, 13, *range(32, 127)])
_LONE_CR = re.compile(r"\r(?!\n)")
_DOCUMENT_MARK = re.compile(r"(?:%|(?:---|\.\.\.)(?:[ \r\n]|$))")
_LINE_MARK = re.compile(r"\n(?:%|(?:---|\.\.\.)(?:[ \r\n]|$))")


def _fast_allowed(text: str) -> bool:
    if text.startswith("---") and _FIRST_LINE_MARKER.match(text):
        text = text[3:]  # a first `---` is fine; later ones are for ruamel to report
    if text.isascii():
        if "\t" in text or ("\r" in text and _LONE_CR.search(text)) \
                or text.encode("ascii").translate(None, _ASCII_ALLOWED) \
                or _DOCUMENT_MARK.match(text) or _LINE_MARK.search(text):
            return False
    elif _unsafe().search(text):
        return False
    bound = 1 + sum(text.count(c) for c in _NODE_STARTS)
    return bound <= 2 * MAX_NODES


def _implicit_resolvers() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    table = VersionedResolver(version=(1, 2)).versioned_resolver
    return {first: [(str(tag), rx) for tag, rx in pairs] for first, pairs in table.items()}


_IMPLICIT = _implicit_resolvers()
_ANY_FIRST = _IMPLICIT.get(None, [])


# By first character: the (tag, match) pairs to try, in order. ruamel's table holds lazily
# compiled patterns whose every call goes through Python; their own `match` is kept instead.
_MATCHERS: dict[str, list[tuple[str, Callable[[str], Any]]]] = {}


def resolve_plain(text: str) -> str:
    """The tag ruamel's YAML 1.2 resolver gives a plain scalar (ruamel's own table)."""
    first = text[:1]
    matchers = _MATCHERS.get(first)
    if matchers is None:
        pairs = _IMPLICIT.get(first, _ANY_FIRST) + (_ANY_FIRST if first else [])
        matchers = _MATCHERS[first] = [(tag, regexp.match) for tag, regexp in pairs]
    for tag, match in matchers:
        if match(text):
            return tag
    return STR_TAG


class Lines:
    """Byte offsets of a UTF-8 text -> 1-based line and column (in characters)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.starts: list[int] | None = None

    def line_col(self, offset: int) -> tuple[int, int]:
        if self.starts is None:
            starts = [0]
            find = self.data.find
            at = find(b"\n")
            while at >= 0:
                starts.append(at + 1)
                at = find(b"\n", at + 1)
            self.starts = starts
        index = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[index]
        return index + 1, len(self.data[start:offset].decode("utf-8", "replace")) + 1


class _Layout:
    """Where rapidyaml 0.15 keeps a node's fields, in 8-byte words (checked before use)."""

    WORDS = 18  # NodeData: type, key {tag, scalar, anchor}, val {...}, 5 ids
    TYPE, KEY_PTR, KEY_LEN, KEY_ANCHOR = 0, 3, 4, 5
    VAL_PTR, VAL_LEN, VAL_ANCHOR = 9, 10, 11
    FIRST_CHILD, NEXT_SIBLING = 14, 16


class _Fast:
    """The rapidyaml path; `compose` gives None when the text must go to ruamel."""

    _lock = threading.Lock()  # rapidyaml writes its error text to fd 2: see _parse
    _scratch = -1  # the file descriptor fd 2 points at while rapidyaml parses
    _usable: bool | None = None
    ryml: Any = None

    @classmethod
    def compose(cls, text: str, skip: Container[bytes] = (), plain: str | None = None,
                refuse: Container[str] = ()) -> Parsed | None:
        if cls._usable is None:
            cls._usable = cls._check_layout()
        if not cls._usable:
            return None
        data = text.encode("utf-8")
        buf = bytearray(data)
        tree = cls._parse(buf)
        if tree is None:
            return None
        try:
            walk = _Walk(tree, buf, data, skip)
            walk.plain, walk.refuse = plain, refuse
            del tree  # the walk keeps it
            parsed = walk.run()
        except _Unsure:
            return None
        parsed.data = data
        parsed.lines = walk.lines
        return parsed

    @classmethod
    def _parse(cls, buf: bytearray) -> Any:
        """rapidyaml's tree of `buf` (parsed in place), or None on a syntax error.

        On an error rapidyaml prints its own message to the C stderr before raising; ruamel's
        message is the one shown, so fd 2 is pointed at a scratch file meanwhile and whatever
        else was written there in that moment is passed on. The scratch file is made once and
        emptied before each parse (making one took a third of parsing one scene).
        """
        ryml = cls.ryml
        tree = ryml.Tree()
        with cls._lock:
            if cls._scratch < 0:
                import tempfile  # here: only a parse needs it (start-up)

                cls._scratch, name = tempfile.mkstemp(prefix="showrunner-yaml-")
                os.unlink(name)  # an anonymous file, gone with the process
            scratch = cls._scratch
            os.lseek(scratch, 0, os.SEEK_SET)
            os.ftruncate(scratch, 0)
            saved = os.dup(2)
            os.dup2(scratch, 2)
            failed = False
            try:
                ryml.parse_in_place(buf, tree)
            except Exception:
                failed = True
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            written = os.lseek(scratch, 0, os.SEEK_CUR)
            if written:
                _pass_on(os.pread(scratch, written, 0), failed)
        return None if failed else tree

    @classmethod
    def _check_layout(cls) -> bool:
        try:
            import ryml
        except ImportError:  # pragma: no cover - rapidyaml is a dependency
            return False
        cls.ryml = ryml
        probe = (b"a: &x 1\nb: [c, {d: 'e'}]\nf:\n  - \"g\"\n  - *x\nh: |\n  i\nj:\n"
                 b"k: {}\n")
        buf = bytearray(probe)
        try:
            tree = ryml.parse_in_place(buf, ryml.Tree())
            words, size = _words(tree)
        except Exception:
            return False
        base = _address(buf)
        api = ryml._ryml
        L = _Layout
        types = _types(words)
        for i in range(size):
            o = i * L.WORDS
            if types[i] != api.Tree_type(tree, i) or types[i] != words[o + L.TYPE] & 0xFFFFFFFF:
                return False
            if words[o + L.FIRST_CHILD] != _id(api.Tree_first_child(tree, i)):
                return False
            if words[o + L.NEXT_SIBLING] != _id(api.Tree_next_sibling(tree, i)):
                return False
            for ptr, length, get, has in ((L.KEY_PTR, L.KEY_LEN, api.Tree_key, api.Tree_has_key),
                                          (L.VAL_PTR, L.VAL_LEN, api.Tree_val, api.Tree_has_val)):
                if not has(tree, i):
                    continue
                view = get(tree, i)
                expected = b"" if view is None else bytes(view)
                at, n = words[o + ptr] - base, words[o + length]
                if n != len(expected) or (n and bytes(buf[at:at + n]) != expected):
                    return False
        return True


def _id(value: int) -> int:
    return value if value >= 0 else (1 << 64) + value


def _address(buf: bytearray) -> int:
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf)) if buf else 0


def _words(tree: Any) -> tuple[memoryview, int]:
    """The tree's node array as 64-bit words, and its node count."""
    head = (ctypes.c_uint64 * 3).from_address(int(tree.this))  # m_buf, m_cap, m_size
    array, capacity, size = head[0], head[1], head[2]
    if size != tree.size() or size > capacity or (size and not array):
        raise _Unsure
    raw = (ctypes.c_uint64 * (size * _Layout.WORDS)).from_address(array)
    return memoryview(raw).cast("B").cast("Q"), size


def _types(words: memoryview) -> memoryview:
    """The node types: the low 32 bits of each node's first word (checked by _check_layout)."""
    return words.cast("B").cast("I")[_Layout.TYPE * 2::_Layout.WORDS * 2]


def _pass_on(written: bytes, failed: bool) -> None:
    """Write back what others wrote to fd 2 while it was redirected (not rapidyaml's error)."""
    if failed:
        kept = [line for line in written.splitlines(keepends=True)
                if "ERROR: [" not in line.decode("utf-8", "replace")
                and b"(detected here)" not in line]
        written = b"".join(kept)
    if written:
        os.write(2, written)


class _Unsure(Exception):
    """The fast path cannot say this exactly as ruamel would: use the exact path."""


class _Walk:
    """rapidyaml's node array -> Nodes (each field of the node array read through a view)."""

    def __init__(self, tree: Any, buf: bytearray, data: bytes, skip: Container[bytes] = ()) -> None:
        self.skip = skip
        self.plain: str | None = None  # see compose
        self.refuse: Container[str] = ()
        words, self.size = _words(tree)
        n = _Layout.WORDS
        # Read in place (no copy): strided views of the node array, so the tree lives as long
        # as the walk.
        self._tree = tree
        self.types = _types(words)
        # Keys, counted in C: each node's lowest type byte (little-endian, as `types`), 1 if
        # it has a key.
        low = bytes(words.cast("B")[_Layout.TYPE * 8::n * 8])
        self.keys = low.translate(_HAS_KEY).count(1)
        self.kptr = words[_Layout.KEY_PTR::n]
        self.klen = words[_Layout.KEY_LEN::n]
        self.vptr = words[_Layout.VAL_PTR::n]
        self.vlen = words[_Layout.VAL_LEN::n]
        self.aptr = words[_Layout.VAL_ANCHOR::n]
        self.alen = words[_Layout.VAL_ANCHOR + 1::n]
        self.first = words[_Layout.FIRST_CHILD::n]
        self.next = words[_Layout.NEXT_SIBLING::n]
        self.buf = buf  # the text after rapidyaml filtered its scalars in place
        self.data = data  # the text as written
        self.base = _address(buf)
        self.lines = Lines(data)
        self.anchors: dict[bytes, Node] = {}
        self.resolved: dict[str, str] = {}
        self.sbuf = buf.decode("ascii") if buf.isascii() else None  # slices are byte slices
        self.latin: str | None = None

    def run(self) -> Parsed:
        size, types = self.size, self.types
        if size == 0:
            return Parsed(None, 0)
        root = 0
        if types[0] & _STREAM == _STREAM:
            root = self.first[0]
            if root >= size or self.next[root] < size:
                raise _Unsure  # no document, or several: ruamel says which
        flags = types[root]
        if flags & (_MAP | _SEQ | _VAL) == 0:
            return Parsed(None, 0)
        if flags & _VAL and not flags & (_MAP | _SEQ) and (flags & _VALNIL or not self.vptr[root]):
            return Parsed(None, 1)
        count = size + self.keys  # as ruamel counts: keys are nodes
        node = self._walk(root)
        if node.kind == SCALAR and node.tag == YAML_TAG + "null" and node.value in ("", "~", "null"):
            return Parsed(None, count)
        return Parsed(node, count)

    def _walk(self, root: int) -> Node:
        return _NodeBuilder(self).value(root, 1)

    # -- helpers -----------------------------------------------------------------------------

    def _item_starts(self, i: int) -> list[int]:
        """Where each item of list `i` starts if it is a plain block mapping (its first key;
        -1 otherwise), and the end of the text: item k's text is starts[k]:starts[k + 1]."""
        types, first, following = self.types, self.first, self.next
        out: list[int] = []
        c = first[i]
        while c < self.size:
            t = types[c]
            at = -1
            key = first[c]
            if t & _MAP and not t & (_FLOW | _VALANCH | _VALTAG) and key < self.size:
                tk = types[key]
                if tk & _KEY_PLAIN and not tk & _KEY_BAD:
                    at = self.kptr[key] - self.base
            out.append(at)
            c = following[c]
        out.append(len(self.data))
        return out

    def key(self, c: int, tc: int) -> tuple[str, int, str]:
        """Key `c` (its type bits `tc`): (text, offset of its first character, tag). _Unsure
        for what only ruamel can tell (a block scalar as a key, a reserved first character)."""
        ptr = self.kptr[c]
        if tc & _KEY_BAD or not self.base <= ptr <= self.base + len(self.buf):
            raise _Unsure
        at = ptr - self.base
        s = self._text(at, self.klen[c])
        if tc & _KEY_PLAIN:
            return s, at, self.plain_tag(s)
        if tc & (_KEY_SQUO | _KEY_DQUO) and at and self.data[at - 1] == (
                0x27 if tc & _KEY_SQUO else 0x22):
            return s, at - 1, STR_TAG
        raise _Unsure  # block scalars as keys

    def value_text(self, i: int) -> tuple[str, int]:
        """Scalar value `i`: (text, offset); _Unsure when rapidyaml moved it out of the text."""
        ptr = self.vptr[i]
        if not self.base <= ptr <= self.base + len(self.buf):
            raise _Unsure  # the value was moved to the arena: no position
        at = ptr - self.base
        return self._text(at, self.vlen[i]), at

    def plain_tag(self, s: str) -> str:
        """The tag of the plain scalar `s` (remembered for short texts); _Unsure for a first
        character that cannot start a plain scalar."""
        tag = self.resolved.get(s)
        if tag is None:
            if s[:1] in _RESERVED:
                raise _Unsure  # ruamel: "found character that cannot start any token"
            tag = resolve_plain(s)
            if len(s) < 64:
                self.resolved[s] = tag
        return tag

    def _text(self, at: int, length: int) -> str:
        if self.sbuf is not None:
            return self.sbuf[at:at + length]
        return self.buf[at:at + length].decode("utf-8")

    def _raw(self, ptr: int, length: int) -> bytes:
        if not self.base <= ptr <= self.base + len(self.buf):
            raise _Unsure
        return bytes(self.buf[ptr - self.base:ptr - self.base + length])

    def _anchor(self, i: int, node: Node) -> None:
        """Register an anchored node (before its children, as ruamel does); it starts at `&`."""
        ptr = self.aptr[i]
        name = self._raw(ptr, self.alen[i])
        at = ptr - self.base - 1
        if at < 0 or self.data[at] != 0x26:  # "&"
            raise _Unsure
        self.anchors[name] = node
        node._line = node.off = at

    def _null(self, c: int, flow: int, after: int, key_node: Any) -> Node:
        """`key:` with nothing after it, placed where ruamel places it: in a flow mapping right
        after the colon; in a block mapping at the next key (the token after the colon)."""
        if self.types[c] & _VALANCH:
            raise _Unsure
        colon = self._after_colon(c)
        if flow:
            at = colon
        else:
            if after >= self.size:
                raise _Unsure  # the last key: ruamel places it where the mapping ends
            at = key_node(after, self.types[after])._line
            if self.data[colon:at].strip(b" \r\n"):
                raise _Unsure  # a comment between: ruamel places it after the colon
        return Node(SCALAR, YAML_TAG + "null", "", at, 0, self.lines)

    def _container_at(self, i: int, flags: int, first_key: int) -> int:
        if flags & _VALANCH:
            return self.aptr[i] - self.base - 1
        data = self.data
        if flags & _MAP and not flags & _FLOW:
            if first_key < 0:
                raise _Unsure
            if data.find(b"?", data.rfind(b"\n", 0, first_key) + 1, first_key) >= 0:
                raise _Unsure  # an explicit `? key` starts the mapping at its `?`
            return first_key
        ptr = self.vptr[i]
        at = ptr - self.base
        if not ptr or not 0 <= at < len(data) or data[at] not in b"[{-":
            raise _Unsure
        return at

    def _after_colon(self, c: int) -> int:
        """The offset just after the `:` that follows the key of node `c`."""
        flags = self.types[c]
        at = self.kptr[c] - self.base
        data = self.data
        if flags & _KEY_PLAIN:
            end = at + self.klen[c]
        elif flags & (_KEY_SQUO | _KEY_DQUO):
            if self.latin is None:
                self.latin = data.decode("latin-1")  # one character per byte: byte offsets
            found = (_SQ if flags & _KEY_SQUO else _DQ).match(self.latin, at - 1)
            if found is None:
                raise _Unsure
            end = found.end()
        else:
            raise _Unsure
        while end < len(data) and data[end] == 0x20:
            end += 1
        if end >= len(data) or data[end] != 0x3A:  # ":"
            raise _Unsure
        return end + 1

    def _block_header(self, content: int) -> int:
        """The offset of a block scalar's `|` or `>`: on the line before its content."""
        data = self.data
        line_end = content - 1
        if line_end < 0 or data[line_end] != 0x0A:
            raise _Unsure
        if line_end > 0 and data[line_end - 1] == 0x0D:
            line_end -= 1
        start = data.rfind(b"\n", 0, line_end) + 1
        header = data[start:line_end].decode("utf-8")
        found = _HEADER_INDICATOR.search(header)
        if found is None:
            raise _Unsure
        return start + len(header[:found.start()].encode("utf-8"))


_RESERVED = ("@", "`")
_KEY, _VAL, _MAP, _SEQ = 1, 2, 4, 8
_HAS_KEY = bytes(b & _KEY for b in range(256))
_STREAM = 40
_KEYREF, _VALREF, _KEYANCH, _VALANCH = 64, 128, 256, 512
_KEYTAG, _VALTAG, _KEYNIL, _VALNIL = 1024, 2048, 4096, 8192
_FLOW = 65536 | 131072 | 262144  # FLOW_SL, FLOW_ML1, FLOW_MLN
_KEY_PLAIN, _VAL_PLAIN = 1 << 29, 1 << 30
_KEY_SQUO, _VAL_SQUO, _KEY_DQUO, _VAL_DQUO = 1 << 25, 1 << 26, 1 << 27, 1 << 28
_VAL_LITERAL, _VAL_FOLDED = 1 << 22, 1 << 24
_KEY_BAD = _KEYTAG | _KEYREF | _KEYANCH | _KEYNIL
_VAL_BAD = _VALTAG | _KEY_BAD
_PLAIN_KEY = _KEY | _VAL | _KEY_PLAIN  # a plain key with a value
_SCALAR_VAL = _VAL_PLAIN | _VAL_SQUO | _VAL_DQUO  # a value written on its line
_PAIR_BAD = _VAL_BAD | _VALREF | _VALANCH | _VALNIL | _MAP | _SEQ


class _NodeBuilder:
    """One walk of a parsed tree into Nodes; raises _Unsure where ruamel must decide."""

    def __init__(self, tree: _Walk) -> None:
        self.tree = tree
        self.size, self.types, self.first, self.following = tree.size, tree.types, tree.first, tree.next
        self.kptr, self.klen, self.vptr, self.vlen = tree.kptr, tree.klen, tree.vptr, tree.vlen
        self.base, self.end = tree.base, tree.base + len(tree.buf)
        self.data, self.lines, self.skip = tree.data, tree.lines, tree.skip
        self.anchors, self.resolved = tree.anchors, tree.resolved
        self.plain = _PlainBuilder(tree) if tree.plain is not None else None

    def key_node(self, c: int, tc: int) -> Node:
        s, at, tag = self.tree.key(c, tc)
        return Node(SCALAR, tag, s, at, 0, self.lines)

    def value(self, i: int, depth: int) -> Node:
        t = self.types[i]
        if depth > MAX_DEPTH or t & _VAL_BAD:
            raise _Unsure  # too deep (ruamel gives the error, at its position), or a tag
        if t & _VALREF:
            target = self.anchors.get(self.tree._raw(self.vptr[i], self.vlen[i])[1:])
            if target is None:
                raise _Unsure  # undefined alias: ruamel's message
            return target
        if t & _MAP:
            return self.mapping(i, t, depth)
        if t & _SEQ:
            return self.sequence(i, t, depth)
        return self.scalar(i, t)

    def mapping(self, i: int, t: int, depth: int) -> Node:
        tree, types, following, size = self.tree, self.types, self.following, self.size
        node = Node(MAP, MAP_TAG, [], 0, 0, self.lines)
        if t & _VALANCH:
            tree._anchor(i, node)
        pairs = node.value
        c = self.first[i]
        first_key = -1
        flow = t & _FLOW
        kptr, klen, vptr, vlen, base, end = self.kptr, self.klen, self.vptr, self.vlen, self.base, self.end
        resolved, lines, sbuf, data = self.resolved, self.lines, tree.sbuf, self.data
        while c < size:
            tc = types[c]
            ptr = kptr[c]
            # The common pair, inlined: a plain key and a plain or quoted scalar (ASCII text).
            if sbuf is not None and tc & _PLAIN_KEY == _PLAIN_KEY and tc & _SCALAR_VAL \
                    and not tc & _PAIR_BAD and base <= ptr <= end and base <= vptr[c] <= end:
                at = ptr - base
                ks = sbuf[at:at + klen[c]]
                ktag = resolved.get(ks)
                vat = vptr[c] - base
                vs = sbuf[vat:vat + vlen[c]]
                if tc & _VAL_PLAIN:
                    vtag = resolved.get(vs)
                    if vtag is None and vs[:1] not in _RESERVED:
                        vtag = resolve_plain(vs)
                        if len(vs) < 64:
                            resolved[vs] = vtag
                elif vat and data[vat - 1] == (0x27 if tc & _VAL_SQUO else 0x22):
                    vtag, vat = STR_TAG, vat - 1
                else:
                    vtag = None
                if ktag is not None and vtag is not None:
                    if first_key < 0:
                        first_key = at
                    pairs.append((Node(SCALAR, ktag, ks, at, 0, lines),
                                  Node(SCALAR, vtag, vs, vat, 0, lines)))
                    c = following[c]
                    continue
            key = self.key_node(c, tc)
            if first_key < 0:
                first_key = key._line
            after = following[c]
            if tc & _VALNIL or not self.vptr[c]:
                pairs.append((key, tree._null(c, flow, after, self.key_node)))
            elif depth == 1 and self.plain is not None and key.value == tree.plain and \
                    key.tag == STR_TAG and types[c] & _SEQ and not types[c] & (_VAL_BAD | _VALREF):
                pairs.append((key, self.sequence(c, types[c], depth + 1, self.plain)))
            else:
                pairs.append((key, self.value(c, depth + 1)))
            c = after
        node._line = node.off = tree._container_at(i, t, first_key)
        return node

    def sequence(self, i: int, t: int, depth: int, plain: _PlainBuilder | None = None) -> Node:
        tree, types, following, size, data = self.tree, self.types, self.following, self.size, self.data
        node = Node(SEQ, SEQ_TAG, [], 0, 0, self.lines)
        if t & _VALANCH:
            tree._anchor(i, node)
        items = node.value
        c = self.first[i]
        skip = self.skip
        starts = tree._item_starts(i) if skip else None
        k = 0
        while c < size:
            if types[c] & _VALNIL or not self.vptr[c]:
                raise _Unsure  # an empty list item: its position is after its `-`
            if starts is not None and starts[k] >= 0 and starts[k + 1] >= 0 and \
                    data[starts[k]:starts[k + 1]] in skip:
                items.append(Node(MAP, SKIPPED_TAG, [], starts[k], 0, self.lines))
            elif plain is not None and (built := plain.item(c, depth + 1)) is not None:
                items.append(Node(MAP, PLAIN_TAG, built[:2], built[2], 0, self.lines))
            else:
                items.append(self.value(c, depth + 1))
            c = following[c]
            k += 1
        node._line = node.off = tree._container_at(i, t, -1)
        return node

    def scalar(self, i: int, t: int) -> Node:
        s, at = self.tree.value_text(i)
        if t & _VAL_PLAIN:
            node = Node(SCALAR, self.tree.plain_tag(s), s, at, 0, self.lines)
        elif t & (_VAL_SQUO | _VAL_DQUO):
            if not at or self.data[at - 1] != (0x27 if t & _VAL_SQUO else 0x22):
                raise _Unsure
            node = Node(SCALAR, STR_TAG, s, at - 1, 0, self.lines)
        elif t & (_VAL_LITERAL | _VAL_FOLDED):
            node = Node(SCALAR, STR_TAG, s, self.tree._block_header(at), 0, self.lines)
        else:
            raise _Unsure
        if t & _VALANCH:
            self.tree._anchor(i, node)
        return node


class _NotPlain(Exception):
    """This item is more than plain data: it is read as nodes."""


class _PlainBuilder:
    """Block-mapping list items straight into plain data, without nodes (see `compose`). It
    raises _Unsure wherever _NodeBuilder would (so a text takes the same path either way) and
    gives up on an item (None) wherever building its nodes could say more than the data."""

    def __init__(self, tree: _Walk) -> None:
        self.tree = tree
        self.size, self.types, self.first, self.following = tree.size, tree.types, tree.first, tree.next
        self.kptr, self.klen, self.vptr, self.vlen = tree.kptr, tree.klen, tree.vptr, tree.vlen
        self.base, self.end = tree.base, tree.base + len(tree.buf)
        self.data, self.resolved = tree.data, tree.resolved
        self.values: dict[str, Any] = {}  # plain scalar text -> its value (short ones)
        self.count = 0  # values built in the current item
        self.first_key = -1

    def item(self, i: int, depth: int) -> tuple[dict[str, Any], int, int] | None:
        """(data, values built, offset of the first key) of list item `i`, or None."""
        t = self.types[i]
        if not t & _MAP or t & (_FLOW | _VAL_BAD | _VALREF | _VALANCH) or depth > MAX_DEPTH:
            return None
        self.count = 0
        try:
            data = self.mapping(i, t, depth, self.tree.refuse)
        except _NotPlain:
            return None
        return data, self.count, self.first_key

    def value(self, i: int, t: int, depth: int) -> Any:
        if depth > MAX_DEPTH or t & _VAL_BAD:
            raise _Unsure
        if t & (_VALREF | _VALANCH):
            raise _NotPlain  # an alias or an anchor: nodes share them
        if t & _MAP:
            return self.mapping(i, t, depth, ())
        if t & _SEQ:
            return self.sequence(i, t, depth)
        return self.scalar(i, t)

    def key(self, c: int, tc: int) -> tuple[str, int]:
        """A key's text and offset, as _NodeBuilder.key_node reads it; only text keys."""
        s, at, tag = self.tree.key(c, tc)
        if tag != STR_TAG:
            raise _NotPlain  # a number, true, null or `<<` as a key
        return s, at

    def mapping(self, i: int, t: int, depth: int, refuse: Container[str]) -> dict[str, Any]:
        types, following, size, vptr = self.types, self.following, self.size, self.vptr
        kptr, klen, vlen, base, end = self.kptr, self.klen, self.vlen, self.base, self.end
        resolved, values, sbuf, data = self.resolved, self.values, self.tree.sbuf, self.data
        out: dict[str, Any] = {}
        pairs = scalars = 0
        first_key = -1
        c = self.first[i]
        inline = sbuf is not None
        text = sbuf or ""  # (an ASCII text: its slices are byte slices)
        while c < size:
            tc = types[c]
            # The common pair, inlined: a plain text key and a short plain or a quoted scalar.
            if inline and tc & _PLAIN_KEY == _PLAIN_KEY and tc & _SCALAR_VAL \
                    and not tc & _PAIR_BAD and base <= (ptr := kptr[c]) <= end \
                    and base <= (vp := vptr[c]) <= end:
                at = ptr - base
                key = text[at:at + klen[c]]
                vat = vp - base
                vs = text[vat:vat + vlen[c]]
                if resolved.get(key) == STR_TAG and key not in refuse and "{" not in vs:
                    if not tc & _VAL_PLAIN:
                        if not vat or data[vat - 1] != (0x27 if tc & _VAL_SQUO else 0x22):
                            raise _Unsure
                        value = vs
                    elif vs in values:
                        value = values[vs]
                    else:
                        tag = resolved.get(vs) or self.tree.plain_tag(vs)
                        value = vs if tag == STR_TAG else _plain_value(tag, vs)
                        if len(vs) < 64:
                            values[vs] = value
                    scalars += 1
                    if first_key < 0:
                        first_key = at
                    out[key] = value
                    pairs += 1
                    c = following[c]
                    continue
            key, at = self.key(c, tc)
            if key in refuse:
                raise _NotPlain
            if first_key < 0:
                first_key = at
            if tc & _VALNIL or not vptr[c]:
                raise _NotPlain  # `key:` alone: its position depends on what follows
            out[key] = self.value(c, tc, depth + 1)
            pairs += 1
            c = following[c]
        if len(out) != pairs:
            raise _NotPlain  # a duplicate key (an error, positioned by the nodes)
        self.first_key = self.tree._container_at(i, t, first_key)
        self.count += 1 + scalars
        return out

    def sequence(self, i: int, t: int, depth: int) -> list[Any]:
        types, following, size, vptr = self.types, self.following, self.size, self.vptr
        out: list[Any] = []
        c = self.first[i]
        while c < size:
            tc = types[c]
            if tc & _VALNIL or not vptr[c]:
                raise _Unsure  # an empty list item: its position is after its `-`
            out.append(self.value(c, tc, depth + 1))
            c = following[c]
        self.tree._container_at(i, t, -1)
        self.count += 1
        return out

    def scalar(self, i: int, t: int) -> Any:
        s, at = self.tree.value_text(i)
        self.count += 1
        if t & _VAL_PLAIN:
            values = self.values
            if s in values:
                return values[s]
            tag = self.tree.plain_tag(s)
            value = s if tag == STR_TAG else _plain_value(tag, s)
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                raise _NotPlain  # a template: rendered while the show is built
            if len(s) < 64:
                values[s] = value
            return value
        if t & (_VAL_SQUO | _VAL_DQUO):
            if not at or self.data[at - 1] != (0x27 if t & _VAL_SQUO else 0x22):
                raise _Unsure
        elif t & (_VAL_LITERAL | _VAL_FOLDED):
            self.tree._block_header(at)
        else:
            raise _Unsure
        if "{{" in s or "{%" in s:
            raise _NotPlain
        return s


_INT_TAG, _FLOAT_TAG, _BOOL_TAG, _NULL_TAG, _TIMESTAMP_TAG = (
    YAML_TAG + t for t in ("int", "float", "bool", "null", "timestamp"))


def _plain_value(tag: str, text: str) -> Any:
    """A plain scalar's value, as the show's data holds it; _NotPlain for one it cannot hold."""
    try:
        if tag == _INT_TAG:
            return yaml_int(text)
        if tag == _FLOAT_TAG:
            return yaml_float(text)
    except ValueError:
        raise _NotPlain from None
    if tag == _BOOL_TAG and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if tag == _NULL_TAG:
        return None
    if tag == _TIMESTAMP_TAG:
        return text  # kept as written
    raise _NotPlain


def upsert_item(
    text: str, key: str, item: dict[str, Any], same: Callable[[Any], bool]
) -> str:
    """`text` with `item` in the top-level list `key`: in place of the first entry `same` accepts,
    else appended (the list is created at the end when the show has none). Everything else —
    comments, order, quoting — is kept as written (ruamel.yaml's round trip); the item is
    written in flow style (``- {note: 36, do: go}``). YamlProblem when the text does not parse
    or `key` is not a list."""
    yaml = ruamel.yaml.YAML(typ="rt", pure=True)
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap long lines
    yaml.preserve_quotes = True
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        raise _syntax_error(exc) from None
    except YAMLError as exc:
        raise YamlProblem(str(exc)) from None
    if not isinstance(data, dict):
        raise YamlProblem("the show is not a mapping")
    entry = CommentedMap(item)
    entry.fa.set_flow_style()
    items = data.get(key)
    if items is None:
        data[key] = CommentedSeq([entry])
    elif not isinstance(items, list):
        raise YamlProblem(f"`{key}` is not a list")
    else:
        index = next((i for i, old in enumerate(items) if same(old)), None)
        if index is None:
            items.append(entry)
        else:
            items[index] = entry
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
