"""The jinja2 sandbox that renders templates inside show-file strings, and its error messages.

Separate from the loader so that everything a template may do (and what it may not) is in one
place; the loader only asks it to render a string and turns its problems into errors.

A template is code the show's author (or whoever sent them the file) wrote, run while the show
loads, and again on every hot reload while it plays. jinja2's sandbox keeps it away from Python's
internals; this module also keeps it from taking all the time or all the memory:

- **Memory.** No text or list a template builds may be larger than `MAX_TEMPLATE_OUTPUT`
  (characters, or items counted with the text inside them). Every operation that could build a
  larger one is checked *before* it runs, from the sizes of its operands: ``*``, ``**``, ``+``,
  ``%``, ``~``, the string methods and filters that pad, repeat or join (``center``, ``ljust``,
  ``indent``, ``replace``, ``join``, ``format``, ``wordwrap``, ``batch``, ``sum``, …). Whatever a
  template writes, inside macros and ``{% set %}`` blocks too, counts against
  `MAX_TEMPLATE_WRITTEN`.
- **Time.** Work is counted in *steps* as it runs: every loop iteration (weighted by the size of
  the loop's body), macro call, call, operator and filter, every item a filter walks through,
  and the compiling of the template itself. One template may take `MAX_TEMPLATE_STEPS`, all the
  templates of one load `MAX_LOAD_STEPS`. A step is a few tenths of a microsecond of work, so a
  load spends at most about two seconds in templates, whatever they say (bench/bench_bad_inputs.py).

A template over a limit is an error at the string that holds it:
``template is too costly (more than 1,000,000 steps)``.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, pass_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

__all__ = [
    "MAX_LOAD_STEPS",
    "MAX_TEMPLATE_OUTPUT",
    "MAX_TEMPLATE_SOURCE",
    "MAX_TEMPLATE_STEPS",
    "MAX_TEMPLATE_WRITTEN",
    "TEMPLATE_FAILURES",
    "Budget",
    "LoadTooCostly",
    "Sandbox",
    "TemplateProblem",
    "TemplateTooCostly",
    "make_env",
    "plain",
    "template_message",
    "undefined_name",
]

MAX_TEMPLATE_OUTPUT = 100_000  # characters one template may produce; also any text or list it builds
MAX_TEMPLATE_SOURCE = 100_000  # characters of one template (compiling takes ~6 µs a character)
MAX_TEMPLATE_WRITTEN = 1_000_000  # characters written in all, inside macros and blocks too
MAX_TEMPLATE_STEPS = 1_000_000  # work one template may do (a step is 0.2 to 0.5 µs)
MAX_LOAD_STEPS = 4_000_000  # work all the templates of one load may do
MAX_EXPONENT = 1000
MAX_INT_BITS = 16_384  # integers a template builds (printing one stops at 4300 digits anyway)

_COMPILE_STEPS = 1_000  # compiling any template (~250 µs)
_TAG_CHAR_STEPS = 25  # and each character inside {{ }} and {% %} (~6 µs)
_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
_TOO_LARGE = "result would be too large"


class TemplateProblem(Exception):
    pass


class TemplateTooCostly(TemplateProblem):
    """A template over its step or write budget."""


class LoadTooCostly(TemplateTooCostly):
    """The templates of one load are over their budget in all: the load should stop here."""


# ---------------------------------------------------------------------------------------------
# The budget
# ---------------------------------------------------------------------------------------------


class Budget:
    """The steps and written characters of the template being rendered, and of the whole load."""

    def __init__(self, per_template: int = MAX_TEMPLATE_STEPS, in_all: int = MAX_LOAD_STEPS,
                 written: int = MAX_TEMPLATE_WRITTEN) -> None:
        self.per_template = per_template
        self.in_all = in_all
        self.max_written = written
        self.steps = 0  # of this template
        self.total = 0  # of every template so far
        self.written = 0  # characters written by this template

    def start(self) -> None:
        """A new template begins."""
        self.steps = 0
        self.written = 0

    def charge(self, steps: int) -> None:
        self.steps += steps
        self.total += steps
        if self.total > self.in_all:
            raise LoadTooCostly(f"template is too costly (the show's templates take more than "
                                f"{self.in_all:,} steps in all)")
        if self.steps > self.per_template:
            raise TemplateTooCostly(f"template is too costly (more than {self.per_template:,} steps)")

    def write(self, chars: int) -> None:
        self.written += chars
        if self.written > self.max_written:
            raise TemplateTooCostly(f"template is too costly (writes more than "
                                    f"{self.max_written:,} characters)")
        self.charge(1 + chars // 256)


def _too_large() -> SecurityError:
    return SecurityError(_TOO_LARGE)


_SCALARS = (bool, float, type(None))


def _size(value: Any, budget: Budget, cap: int = MAX_TEMPLATE_OUTPUT) -> int:
    """About how many characters `str(value)` takes (strings count their characters, numbers
    their digits, lists, tuples, dicts and sets one per item plus their items' sizes); counting
    stops past `cap`.

    Shared items count each time they appear, as they would when printed.
    """
    total = 0
    stack = [value]
    while stack and total <= cap:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes or isinstance(item, str):
            total += len(item)
        elif kind is int:
            bits = item.bit_length()
            total += 1 if bits <= 64 else bits // 3
        elif kind in _SCALARS:
            total += 1
        else:
            if isinstance(item, Namespace):
                item = object.__getattribute__(item, "_Namespace__attrs")
            if isinstance(item, range):
                total += 1 + len(item)
            elif isinstance(item, Mapping):
                total += 1
                budget.charge(1 + len(item) // 2)
                stack.extend(item)
                stack.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                total += 1
                budget.charge(1 + len(item) // 2)
                stack.extend(item)
            else:
                total += 1
    return total


def _checked(size: int) -> int:
    if size > MAX_TEMPLATE_OUTPUT:
        raise _too_large()
    return size


# ---------------------------------------------------------------------------------------------
# Instrumenting templates: loops, macros and output report to the budget
# ---------------------------------------------------------------------------------------------

# Names a template cannot write (no identifier has a colon), so only the instrumenting uses them.
_CHARGE, _ITER, _EMIT, _CONCAT = "sr:charge", "sr:iter", "sr:emit", "sr:concat"


# Steps a node costs each time it runs (sandboxed attribute lookups are the slowest); what
# calls and filters do inside is counted when they run.
_NODE_STEPS: dict[type[nodes.Node], int] = {
    nodes.Getattr: 10, nodes.Getitem: 3, nodes.Call: 6, nodes.Filter: 3, nodes.Test: 2,
}


def _weight(body: Iterable[nodes.Node]) -> int:
    """The steps one run of a body costs at most, besides what its calls and filters count."""
    return sum(_NODE_STEPS.get(type(n), 1)
               for node in body for n in itertools.chain([node], node.find_all(nodes.Node)))


def _filter(node: nodes.Node | None, name: str, args: list[nodes.Expr], lineno: int) -> nodes.Filter:
    return nodes.Filter(node, name, args, [], None, None, lineno=lineno)


def _charge_first(body: list[nodes.Node], lineno: int) -> list[nodes.Node]:
    charge = _filter(nodes.Const(_weight(body)), _CHARGE, [], lineno)
    return [nodes.ExprStmt(charge, lineno=lineno), *body]


class _Instrument(NodeTransformer):
    """Rewrites a parsed template so that what repeats, and what it writes, is counted."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)  # changes `node` in place
        per_item = 2 + (_weight([node.test]) if node.test is not None else 0)
        if node.recursive:  # loop(...) runs the body again: it counts itself each time
            node.body = _charge_first(node.body, node.lineno)
        else:  # one charge per item for the test and the body (cheaper than two)
            per_item += _weight(node.body)
        node.iter = _filter(node.iter, _ITER, [nodes.Const(per_item)], node.lineno)
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)  # changes `node` in place
        node.body = _charge_first(node.body, node.lineno)
        return node

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)  # changes `node` in place
        node.body = _charge_first(node.body, node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)  # changes `node` in place
        return _filter(nodes.List(node.nodes, lineno=node.lineno), _CONCAT, [], node.lineno)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)  # changes `node` in place
        node.nodes = [
            _filter(nodes.Const(child.data) if isinstance(child, nodes.TemplateData) else child,
                    _EMIT, [], child.lineno)
            for child in node.nodes
        ]
        return node


# ---------------------------------------------------------------------------------------------
# Estimates of what an operation would build, made before it runs
# ---------------------------------------------------------------------------------------------

_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.?)",
    re.DOTALL,
)


def _digits(text: str) -> int:
    """A width written in a format: a number too long for int() is too large anyway."""
    return MAX_TEMPLATE_OUTPUT + 1 if len(text) > 9 else int(text)


def _number(text: str | None, positional: list[Any]) -> int:
    if text == "*":
        value = positional.pop(0) if positional else 0
        return value if isinstance(value, int) else 0
    return _digits(text) if text else 0


def _percent_size(fmt: str, values: Any, budget: Budget) -> int:
    """About how long ``fmt % values`` is."""
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    total = len(fmt)
    for match in _PERCENT.finditer(fmt):
        budget.charge(1)
        if match["conv"] == "%":
            total += 1
            continue
        wide = max(_number(match["width"], positional), _number(match["prec"], positional))
        if match["key"] is not None and mapping is not None:
            value = mapping.get(match["key"])
        else:
            value = positional.pop(0) if positional else None
        text = 4 * _size(value, budget) if match["conv"] in "ra" else _size(value, budget)
        total += max(wide, text) + 320  # a float's digits
        if total > MAX_TEMPLATE_OUTPUT:
            break
    return total


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str,
         default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _replace_size(text: str, old: Any, new: Any, count: Any) -> int:
    old, new = str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(0, len(new) - len(old))


def _method_size(owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
                 budget: Budget) -> int | None:
    """What a string method that pads, repeats or joins would build; None for the others."""
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(owner), _int(_arg(args, kwargs, 0, "width")))
    if name == "expandtabs":
        tab = _int(_arg(args, kwargs, 0, "tabsize", 8))
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        return len(owner) + tabs * tab
    if name == "replace" and isinstance(owner, str):
        return _replace_size(owner, _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", ""),
                             _arg(args, kwargs, 2, "count", -1))
    if name == "translate" and isinstance(owner, str):
        table = _arg(args, kwargs, 0, "table")
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1) \
            if isinstance(table, Mapping) else 1
        return len(owner) * max(1, longest)
    return None


# ---------------------------------------------------------------------------------------------
# The sandbox
# ---------------------------------------------------------------------------------------------


class _FormatLimits(string.Formatter):
    """``str.format`` that refuses widths and results over the limit before building them."""

    budget: Budget
    built = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        self.budget.charge(1)
        widths = [_digits(n) for n in re.findall(r"\d+", format_spec)]
        self.built += max([_size(value, self.budget), *widths])
        _checked(self.built)
        return super().format_field(value, format_spec)


class _LimitedFormatter(_FormatLimits, SandboxedFormatter):
    pass


class _LimitedEscapeFormatter(_FormatLimits, SandboxedEscapeFormatter):
    pass


# Filters whose first argument is walked through item by item: steps per item (those that call
# a test, a filter or an attribute lookup for each item cost more).
_WALKING = {
    "batch": 1, "dictsort": 2, "groupby": 4, "items": 1, "join": 1, "list": 1, "map": 4, "max": 2,
    "min": 2, "pprint": 2, "reject": 4, "rejectattr": 4, "reverse": 1, "select": 4,
    "selectattr": 4, "slice": 1, "sort": 2, "string": 1, "sum": 1, "tojson": 2, "unique": 2,
    "urlencode": 2, "xmlattr": 2,
}


class Sandbox(ImmutableSandboxedEnvironment):
    """The jinja2 sandbox, with a budget for time and memory (see the module docstring)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = Budget()
        self._by_text: dict[tuple[bool, str], Any] = {}  # (an expression?, source) -> compiled
        self.filters = {name: self._guarded(name, func) for name, func in self.filters.items()}
        self.filters.update({_CHARGE: self._charge_filter, _ITER: self._iter_filter,
                             _EMIT: self._emit_filter, _CONCAT: self._concat_filter})

    # -- rendering -------------------------------------------------------------------------------

    def render_value(self, text: str, ctx: dict[str, Any], max_values: int) -> Any:
        """Render a templated string; one `{{ expr }}` keeps the expression's own type.

        Raises TemplateProblem (LoadTooCostly when the load's budget is spent) or one of
        TEMPLATE_FAILURES.
        """
        self.budget.start()
        single = _SINGLE_EXPR.match(text)
        if single and "{{" not in single["expr"] and "}}" not in single["expr"]:
            expression = self._template_for(single["expr"], expression=True)
            return plain(expression(**ctx), max_values, self.budget)
        template = self._template_for(text, expression=False)
        out = "".join(template.generate(ctx))
        if len(out) > MAX_TEMPLATE_OUTPUT:
            raise TemplateProblem("template result is too long")
        return out

    def _template_for(self, source: str, *, expression: bool) -> Any:
        """The compiled template (or expression), compiled once per load; compiling is charged."""
        key = (expression, source)
        if key in self._by_text:
            return self._by_text[key]
        if len(source) > MAX_TEMPLATE_SOURCE:
            raise TemplateProblem(f"template is too long ({len(source):,} characters; "
                                  f"at most {MAX_TEMPLATE_SOURCE:,})")
        tags = len(source) if expression else sum(map(len, _TAGS.findall(source)))
        self.budget.charge(_COMPILE_STEPS + _TAG_CHAR_STEPS * tags)
        if expression:
            compiled: Any = self.compile_expression(source, undefined_to_none=False)
        else:
            compiled = self.from_string(source)
        self._by_text[key] = compiled
        return compiled

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        source = _Instrument().visit(source)
        source.set_environment(self)
        return super()._generate(source, name, filename, defer_init)

    # -- the instrumenting filters ---------------------------------------------------------------

    @pass_context
    def _charge_filter(self, context: Any, steps: int) -> str:
        self.budget.charge(max(1, steps))
        return ""

    @pass_context
    def _iter_filter(self, context: Any, iterable: Any, per_item: int) -> Any:
        if isinstance(iterable, jinja2.Undefined):
            return iterable  # let the loop raise its usual error
        return self._counted(iterable, max(1, per_item))

    def _counted(self, iterable: Any, per_item: int = 1) -> Iterator[Any]:
        charge = self.budget.charge
        for item in iterable:
            charge(per_item)
            yield item

    @pass_context
    def _emit_filter(self, context: Any, value: Any) -> Any:
        self.budget.write(len(value) if isinstance(value, str) else _size(value, self.budget))
        return value

    @pass_context
    def _concat_filter(self, context: Any, items: list[Any]) -> str:
        self.budget.charge(1)
        _checked(sum(_size(item, self.budget) for item in items))
        return "".join([str(item) for item in items])

    # -- operators and calls ---------------------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.budget.charge(1)
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError("exponent is too large")
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                if abs(left).bit_length() * right > MAX_INT_BITS:
                    raise _too_large()
        elif operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if len(seq) * n > MAX_TEMPLATE_OUTPUT:
                        raise _too_large()
                    if n > 1 and not isinstance(seq, str):
                        _checked(_size(seq, self.budget) * n)
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise _too_large()
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                _checked(_size(left, self.budget) + _size(right, self.budget))
        elif operator == "%" and isinstance(left, str):
            _checked(_percent_size(left, right, self.budget))
        if isinstance(left, int) and isinstance(right, int):
            self.budget.charge((left.bit_length() + right.bit_length()) // 1024)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.budget.charge(1)
        if isinstance(__obj, LoopContext) and args:  # a recursive loop's next level
            args = (__self._counted(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str | bytes):
            if name == "join" and args:
                items = list(__self._counted(args[0]))
                sizes = sum(_size(item, __self.budget) for item in items)
                _checked(sizes + len(owner) * max(0, len(items) - 1))
                args = (items, *args[1:])
            else:
                built = _method_size(owner, name, args, kwargs, __self.budget)
                if built is not None and built > len(owner):
                    _checked(built)
        elif isinstance(owner, int) and name == "to_bytes":
            _checked(_int(_arg(args, kwargs, 0, "length", 1)))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map``, sandboxed and limited (jinja2's, with limits)."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        f_self: str = value.__self__
        formatter: _FormatLimits
        if isinstance(f_self, Markup):
            formatter = _LimitedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = _LimitedFormatter(self)
        is_format_map = value.__name__ == "format_map"
        budget = self.budget

        def limited(*args: Any, **kwargs: Any) -> str:
            formatter.budget, formatter.built = budget, 0
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return type(f_self)(formatter.vformat(f_self, args, kwargs))

        return functools.update_wrapper(limited, value)

    # -- filters ---------------------------------------------------------------------------------

    def _guarded(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        passes = getattr(func, "jinja_pass_arg", None) is not None
        per_item = _WALKING.get(name, 0)
        budget = self.budget

        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            budget.charge(1)
            lead, rest = (args[:1], args[1:]) if passes else ((), args)
            if not rest or isinstance(rest[0], jinja2.Undefined):
                return func(*args, **kwargs)  # the filter says what is wrong
            value, more = rest[0], rest[1:]
            if per_item and isinstance(value, Iterator):
                value = self._counted(value, per_item)
            elif per_item and hasattr(value, "__len__"):
                budget.charge(per_item * len(value))
            value, more, kwargs = self._check_filter(name, value, more, kwargs)
            result = func(*lead, value, *more, **kwargs)
            if isinstance(result, str) and len(result) > MAX_TEMPLATE_OUTPUT:
                if len(result) > _size(value, budget):
                    raise _too_large()  # it grew past the limit (urlencode, escape, tojson …)
            return result

        return guarded

    def _check_filter(
        self, name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """Refuses what a filter would build over the limit before it runs.

        Gives back the filter's input and arguments, changed only where the filter is handed
        what it would have computed anyway (the items to join or sum, as a list).
        """
        budget = self.budget
        if not isinstance(value, str) and name in _TEXT_FILTERS:
            _checked(_size(value, budget))  # str() of a list or a namespace
        text = _text(value)
        if name == "center":
            _checked(max(len(text), _int(_arg(args, kwargs, 0, "width", 80))))
        elif name == "indent":
            width = _arg(args, kwargs, 0, "width", 4)
            prefix = len(width) if isinstance(width, str) else _int(width)
            _checked(len(text) + (text.count("\n") + 2) * prefix)
        elif name == "replace":
            built = _replace_size(str(value), _arg(args, kwargs, 0, "old", ""),
                                  _arg(args, kwargs, 1, "new", ""), _arg(args, kwargs, 2, "count"))
            if built > len(text):
                _checked(built)
        elif name == "format":
            _checked(_percent_size(str(value), kwargs or args, budget))
        elif name == "wordwrap":
            width = max(1, _int(_arg(args, kwargs, 0, "width", 79)))
            wrap = _arg(args, kwargs, 2, "wrapstring") or self.newline_sequence
            lines = len(text) // width + text.count("\n") + 1
            built = len(text) + lines * len(str(wrap))
            if built > len(text):
                _checked(built)
        elif name in ("batch", "slice"):
            count = _int(_arg(args, kwargs, 0, "linecount" if name == "batch" else "slices"))
            if name == "slice" or _arg(args, kwargs, 1, "fill_with") is not None:
                _checked(count)
                budget.charge(count)
        elif name == "join":
            sep = _arg(args, kwargs, 0, "d", "")
            items = self._items(value, _arg(args, kwargs, 1, "attribute"))
            _checked(sum(_size(item, budget) for item in items)
                     + len(str(sep)) * max(0, len(items) - 1))
            return items, (sep,), {}
        elif name == "sum":
            start = _arg(args, kwargs, 1, "start", 0)
            items = self._items(value, _arg(args, kwargs, 0, "attribute"))
            if isinstance(start, list | tuple):  # sum() of lists is quadratic: build it here
                _checked(_size(start, budget) + sum(_size(item, budget) for item in items))
                if all(type(item) is type(start) for item in items):
                    items = [type(start)(itertools.chain(start, *items))]
                    start = type(start)()
            return items, (None, start), {}
        return value, args, kwargs

    def _items(self, value: Any, attribute: Any) -> list[Any]:
        """The items of `value` (or the given attribute of each), as join and sum see them."""
        items = list(value)
        if attribute is not None:
            getter = jinja2.filters.make_attrgetter(self, attribute)
            items = [getter(item) for item in items]
            self.budget.charge(len(items))
        return items


# Filters that turn their input into text: a list or namespace given to them is printed.
_TEXT_FILTERS = frozenset({
    "capitalize", "center", "escape", "e", "forceescape", "format", "indent", "lower", "pprint",
    "replace", "string", "striptags", "title", "tojson", "trim", "truncate", "upper", "urlencode",
    "urlize", "wordcount", "wordwrap", "xmlattr",
})


def make_env() -> Sandbox:
    """A fresh sandbox: undefined names are errors, nothing is escaped, no helper globals.

    Its budget counts every template it renders: make one per load.
    """
    env = Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    return env


# What a template can raise: jinja2's own errors plus whatever Python raises for the expression
# the user wrote (1/0, 'a' + 1, a missing index, a recursion-deep expression).
TEMPLATE_FAILURES = (
    jinja2.TemplateError,
    ArithmeticError,
    TypeError,
    ValueError,
    LookupError,
    RecursionError,
)


def undefined_name(exc: BaseException) -> str | None:
    """The variable name of an "'x' is undefined" error, else None."""
    if isinstance(exc, jinja2.UndefinedError):
        match = _UNDEFINED.match(str(exc))
        if match:
            return match.group(1)
    return None


_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


def template_message(exc: BaseException, ctx: dict[str, Any]) -> str:
    """The user's message for one of TEMPLATE_FAILURES; `ctx` gives "did you mean" names."""
    if isinstance(exc, SecurityError):
        return f"template not allowed: {str(exc).rstrip('.')}"
    if isinstance(exc, jinja2.UndefinedError):
        match = _UNDEFINED.match(str(exc))
        if match:
            hint = difflib.get_close_matches(match.group(1), [k for k in ctx if k != "loop"], n=1)
            names = ", ".join(sorted(k for k in ctx)) or "none"
            suffix = f"; did you mean {hint[0]!r}?" if hint else f" (known: {names})"
            return f"undefined template variable {match.group(1)!r}{suffix}"
        return f"template error: {exc}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        text = str(exc.message or exc)
        block = re.search(r"innermost block that needs to be closed is '(\w+)'", text)
        if text.startswith("Unexpected end of template") and block:
            text = f"unexpected end of template: '{{% end{block.group(1)} %}}' is missing"
        return f"template syntax error: {text[0].lower()}{text[1:]}".rstrip(".")
    if isinstance(exc, RecursionError):
        return "template error: expression is nested too deeply"
    return f"template error: {exc}".rstrip(".")


def plain(value: Any, max_values: int, budget: Budget | None = None) -> Any:
    """A template result as plain data (what YAML could have written), at most `max_values`
    values in all (an item shared by several lists counts each time)."""
    count = [0]
    return _plain(value, max_values, budget or Budget(), count)


def _plain(value: Any, max_values: int, budget: Budget, count: list[int]) -> Any:
    count[0] += 1
    if count[0] > max_values:
        raise TemplateProblem("template gives too many values")
    budget.charge(1)
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # drops Markup
    if isinstance(value, dict):
        return {str(k): _plain(v, max_values, budget, count) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        # lists, ranges, and the generators filters like `map` and `select` return
        items = list(itertools.islice(value, max_values + 1))
        if len(items) > max_values:
            raise TemplateProblem("template gives too many values")
        return [_plain(v, max_values, budget, count) for v in items]
    raise TemplateProblem(f"template gives a {type(value).__name__}, not a value")

