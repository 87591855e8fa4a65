"""The jinja2 sandbox that renders templates inside show-file strings, and its error messages.

Separate from the loader so that everything a template may do (and what it may not) is in one
place; the loader only asks it to render a string and turns its problems into errors.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_OUTPUT = 100_000  # characters one template may produce


class Sandbox(ImmutableSandboxedEnvironment):
    """The jinja2 sandbox, also refusing arithmetic that would eat all memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 1000:
            raise SecurityError("exponent is too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    if len(seq) * n > MAX_TEMPLATE_OUTPUT:
                        raise SecurityError("result would be too large")
        return super().call_binop(context, operator, left, right)


def make_env() -> Sandbox:
    """A fresh sandbox: undefined names are errors, nothing is escaped, no helper globals."""
    env = Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    return env


class TemplateProblem(Exception):
    pass


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


def plain(value: Any, max_values: int) -> Any:
    """A template result as plain data (what YAML could have written), at most `max_values` per list."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)  # drops Markup
    if isinstance(value, dict):
        return {str(k): plain(v, max_values) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        # lists, ranges, and the generators filters like `map` and `select` return
        items = list(itertools.islice(value, max_values + 1))
        if len(items) > max_values:
            raise TemplateProblem("template gives too many values")
        return [plain(v, max_values) for v in items]
    raise TemplateProblem(f"template gives a {type(value).__name__}, not a value")
