"""Templates cannot take all the time or all the memory: every bomb is one positioned error.

Everything goes through `load()`, as a show file would. No timing is asserted here (that is
bench/bench_bad_inputs.py); the limits are counted in steps and characters, so the outcome of
each case is the same on any machine.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from showrunner.errors import ShowErrors
from showrunner.show.load import load, load_show
from showrunner.show.templating import (
    MAX_LOAD_STEPS,
    MAX_TEMPLATE_SOURCE,
    MAX_TEMPLATE_STEPS,
    make_env,
)

TOO_LARGE = "template not allowed: result would be too large"
TOO_COSTLY = f"template is too costly (more than {MAX_TEMPLATE_STEPS:,} steps)"
WRITES_TOO_MUCH = "template is too costly (writes more than 1,000,000 characters)"


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "show.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ShowErrors) as caught:
        load(path)
    return [e.format().replace(str(tmp_path) + "/", "") for e in caught.value.errors]


def _notes(template: str) -> str:
    """A show whose one scene's notes are `template` (at line 4, column 12)."""
    quoted = template.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'title: t\nscenes:\n  - name: a\n    notes: "{quoted}"\n'


BOMBS = {
    # time: loops, recursion and many small steps
    "nested-range-loops": ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
                           "{% endfor %}", TOO_COSTLY),
    "loops-that-skip-everything": ("{% for a in range(100000) %}{% for b in range(100000) if b < 0 %}"
                                   "{% endfor %}{% endfor %}", TOO_COSTLY),
    "macro-doubling": ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                       "{% endmacro %}{{ f(40) }}", TOO_COSTLY),
    "recursive-loop": ("{% for x in range(100) recursive %}{% if loop.depth < 6 %}"
                       "{{ loop(range(100)) }}{% endif %}{% endfor %}", TOO_COSTLY),
    "filters-in-loops": ("{% for i in range(100000) %}{% for j in range(100000) %}"
                         "{{ j|string|upper }}{% endfor %}{% endfor %}", TOO_COSTLY),
    "sorting-in-a-loop": ("{% for i in range(100000) %}{{ (range(100000)|list|sort)[0] }}"
                          "{% endfor %}", TOO_COSTLY),
    "long-expression": ("{{ " + "+".join(["1"] * 40000) + " }}", TOO_COSTLY),
    # arithmetic
    "chained-power": ("{{ ((9 ** 999) ** 999) ** 999 }}", TOO_LARGE),
    "squaring-in-a-loop": ("{% set ns = namespace(x=3) %}{% for i in range(100) %}"
                           "{% set ns.x = ns.x * ns.x %}{% endfor %}{{ ns.x > 0 }}", TOO_LARGE),
    # memory: padding, repeating, replacing, joining
    "center-method": ("{{ 'x'.center(10**9) }}", TOO_LARGE),
    "center-filter": ("{{ 'x'|center(10**9) }}", TOO_LARGE),
    "ljust": ("{{ 'x'.ljust(10**9) }}", TOO_LARGE),
    "zfill": ("{{ 'x'.zfill(10**9) }}", TOO_LARGE),
    "expandtabs": ("{{ ('\t' * 1000).expandtabs(10**6) }}", TOO_LARGE),
    "indent-width": ("{{ 'a\nb'|indent(10**9) }}", TOO_LARGE),
    "indent-text": ("{{ ('a\n' * 1000)|indent('x' * 100000) }}", TOO_LARGE),
    "replace-filter": ("{{ ('x' * 1000)|replace('x', 'x' * 1000) }}", TOO_LARGE),
    "replace-nothing": ("{{ ('x' * 1000).replace('', 'y' * 1000) }}", TOO_LARGE),
    "tilde-doubling": ("{% set ns = namespace(s='x') %}{% for i in range(64) %}"
                       "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", TOO_LARGE),
    "plus-doubling": ("{% set ns = namespace(s=[1]) %}{% for i in range(64) %}"
                      "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}", TOO_LARGE),
    "percent-width": ("{{ '%999999999d' % 1 }}", TOO_LARGE),
    "percent-star": ("{{ '%*d' % (10**9, 1) }}", TOO_LARGE),
    "format-filter": ("{{ '%999999999s'|format('x') }}", TOO_LARGE),
    "str-format": ("{{ '{:>999999999}'.format(1) }}", TOO_LARGE),
    "str-format-nested-width": ("{{ '{:{w}}'.format(1, w=10**9) }}", TOO_LARGE),
    "format-map": ("{{ ('{a}' * 1000).format_map({'a': 'x' * 100000}) }}", TOO_LARGE),
    "join-filter": ("{{ range(100000)|join('x' * 100000) }}", TOO_LARGE),
    "join-method": ("{{ ('x' * 100000).join(range(100000)) }}", TOO_LARGE),
    "wordwrap": ("{{ ('x' * 100000)|wordwrap(1, wrapstring='y' * 1000) }}", TOO_LARGE),
    "translate": ("{{ ('a' * 100000).translate({97: 'x' * 100000}) }}", TOO_LARGE),
    "to-bytes": ("{{ (1).to_bytes(10**9, 'big')|length }}", TOO_LARGE),
    "shared-lists": ("{{ ([[1] * 100000] * 100000)|length }}", TOO_LARGE),
    "batch-fill": ("{{ [1]|batch(10**9, 0)|list }}", TOO_LARGE),
    "slice-count": ("{{ [1]|slice(10**9)|list|length }}", TOO_LARGE),
    # written output, inside macros too
    "written-in-a-macro": ("{% macro m() %}{% for i in range(100000) %}{{ 'x' * 100000 }}"
                           "{% endfor %}{% endmacro %}{{ m()|length }}", WRITES_TOO_MUCH),
    "text-in-a-macro": ("{% macro m() %}{% for i in range(100000) %}" + "y" * 5000
                        + "{% endfor %}{% endmacro %}{{ m()|length }}", WRITES_TOO_MUCH),
}


@pytest.mark.parametrize("case", list(BOMBS), ids=str)
def test_template_bombs_are_one_positioned_error(case: str, tmp_path: Path) -> None:
    template, message = BOMBS[case]
    assert _errors(tmp_path, _notes(template)) == [f"show.yaml:4:12: scenes[0].notes: {message}"]


def test_a_template_too_long_to_compile(tmp_path: Path) -> None:
    template = "{{ 1 }}" + "x" * MAX_TEMPLATE_SOURCE
    assert _errors(tmp_path, _notes(template)) == [
        f"show.yaml:4:12: scenes[0].notes: template is too long "
        f"({len(template):,} characters; at most {MAX_TEMPLATE_SOURCE:,})"
    ]


def test_the_templates_of_a_load_share_one_budget(tmp_path: Path) -> None:
    """Each template under its own limit, a thousand of them over the load's: one error, stop."""
    text = (
        "title: t\nscenes:\n  - each: 1000\n    scene:\n      name: \"s{{ loop.index }}\"\n"
        "      notes: \"{% for a in range(300) %}{% for b in range(300) %}{% endfor %}{% endfor %}\"\n"
    )
    errors = _errors(tmp_path, text)
    assert len(errors) == 1
    assert errors[0].startswith("show.yaml:6:14: scenes[")
    assert errors[0].endswith(f".notes: template is too costly (the show's templates take more than "
                              f"{MAX_LOAD_STEPS:,} steps in all)" + errors[0][errors[0].index(" (each"):])


def test_shared_items_count_each_time_in_a_template_result(tmp_path: Path) -> None:
    """300 references to one 1000-item list are 300,000 values once the result is plain data."""
    many = ", ".join(["xs"] * 300)
    text = (f"title: t\nvars:\n  xs: \"{{{{ range(1000)|list }}}}\"\n  n: \"{{{{ [{many}] }}}}\"\n"
            "scenes:\n  - name: a\n")
    assert _errors(tmp_path, text) == ["show.yaml:4:6: vars.n: template gives too many values"]


# ---------------------------------------------------------------------------------------------
# Ordinary templates render exactly as jinja2's sandbox renders them
# ---------------------------------------------------------------------------------------------

CTX = {
    "xs": [3, 1, 2],
    "users": [{"name": "a", "age": 3, "kids": [{"name": "b", "age": 1, "kids": []}]},
              {"name": "c", "age": 5, "kids": []}],
    "d": {"b": 2, "a": 1},
    "text": "hello world\nsecond line",
    "moods": ["rain", "fog"],
}

SAME = [
    "{% for x in xs %}{{ loop.index }}/{{ loop.length }}{% if loop.last %}!{% endif %}{% endfor %}",
    "{% for x in [] %}x{% else %}empty{% endfor %}",
    "{% for x in xs if x > 1 %}{{ x }}{{ loop.revindex }}{% endfor %}",
    "{% for u in users recursive %}{{ u.name }}({{ loop.depth }}){% if u.kids %}[{{ loop(u.kids) }}]"
    "{% endif %}{% endfor %}",
    "{% macro m(a, b=2) %}{{ a }}-{{ b }}-{{ caller() }}{% endmacro %}{% call m(3) %}inner{% endcall %}",
    "{{ users|join(', ', attribute='name') }}|{{ xs|join }}|{{ xs|join('-') }}",
    "{{ users|sum(attribute='age') }} {{ xs|sum }} {{ xs|sum(start=10) }} {{ [[1], [2, 3]]|sum(start=[]) }}",
    "{{ '%s-%d' % ('a', 3) }} {{ '%(a)s' % {'a': 1} }} {{ '%5.2f' % 3.14159 }} {{ '%s'|format('x') }}",
    "{{ '{} {:>5} {a}'.format(1, 2, a=3) }} {{ '{a}'.format_map({'a': 7}) }}",
    "{{ text|replace('l', 'L', 2) }} {{ text|indent(2) }} {{ text|indent('> ', first=true) }}",
    "{{ 'ab'|center(8) }}|",
    "{{ text|wordwrap(5) }} {{ text|wordwrap(5, wrapstring='/') }} {{ text|truncate(9) }}",
    "{{ xs|batch(2, 0)|list }} {{ xs|slice(2, 9)|list }} {{ xs|sort }} {{ xs|map('string')|join }}",
    "{{ d|dictsort }} {{ users|map(attribute='name')|list }} {{ users|selectattr('age', 'gt', 4)|first }}",
    "{{ 'a' ~ 1 ~ none }} {{ 'ab'.center(6, '*') }} {{ 'x'.ljust(3) }}| {{ '-'.join(moods) }}",
    "{{ 2 ** 10 }} {{ 2 ** 0.5 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 'ab' * 3 }} {{ [1] * 3 }} {{ [1] + [2] }}",
    "{% set ns = namespace(s='') %}{% for m in moods %}{% set ns.s = ns.s ~ m %}{% endfor %}{{ ns.s }}",
    "{{ moods|tojson }} {{ moods|string }} {{ d|xmlattr }} {{ 'a b'|urlencode }} {{ moods|reverse|list }}",
    "{{ range(3)|list }} {{ 'abc'.translate({97: 'x'}) }} {{ 'a'.zfill(3) }} {{ moods|unique|list }}",
    "{{ text|title }} {{ text|wordcount }} {{ 3.7|int }} {{ xs|max }} {{ xs|length }} {{ xs|first }}",
    "{% filter upper %}shout {{ xs }}{% endfilter %}{% set x %}block {{ 1 }}{% endset %}{{ x }}",
]


@pytest.mark.parametrize("template", SAME)
def test_ordinary_templates_render_as_before(template: str) -> None:
    reference = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    expected = reference.from_string(template).render(CTX)
    assert make_env().render_value(template, dict(CTX), 1000) == expected


@pytest.mark.parametrize(
    "template",
    ["{{ nope ~ 'x' }}", "{% for x in nope %}{% endfor %}", "{{ nope|join }}", "{{ 1 + nope }}",
     "{{ '%s' % nope }}", "{{ '{}'.format(nope) }}"],
)
def test_undefined_names_are_still_reported_as_such(template: str) -> None:
    with pytest.raises(jinja2.UndefinedError, match="'nope' is undefined"):
        make_env().render_value(template, {}, 1000)


def test_a_big_but_reasonable_show_loads(tmp_path: Path) -> None:
    """A thousand generated scenes with a few templates each stay far inside the budget."""
    text = (
        "title: t\nvars:\n  moods: \"{{ range(1000)|map('string')|list }}\"\nscenes:\n"
        "  - each: \"{{ moods }}\"\n    as: mood\n    scene:\n"
        "      name: \"s{{ loop.index }}-{{ mood }}\"\n"
        "      prompts: \"{{ ['a forest', 'at', mood]|join(' ') }} {% for i in range(20) %}.{% endfor %}\"\n"
        "      duration: \"{{ loop.index % 7 + 1 }}\"\n"
    )
    path = tmp_path / "show.yaml"
    path.write_text(text, "utf-8")
    show = load_show(path)
    assert len(show.scenes) == 1000
    assert show.scenes[999].name == "s1000-999"


@pytest.mark.anyio
async def test_a_bomb_saved_while_playing_does_not_block_later_reloads(tmp_path: Path) -> None:
    """The hot reload renders in a worker thread: a bounded render ends, so the next edit (and
    quitting, which waits for the reload) still goes through."""
    import asyncio

    from showrunner.reload.watch import watch_show

    show = tmp_path / "show.yaml"
    show.write_text(_notes("calm"), "utf-8")
    stop = asyncio.Event()
    items = watch_show(show, stop_event=stop, initial=load(show), debounce_ms=20, step_ms=10)
    try:
        nxt = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0.2)
        show.write_text(_notes(BOMBS["nested-range-loops"][0]), "utf-8")
        bad = await asyncio.wait_for(nxt, 30)
        assert isinstance(bad, ShowErrors)
        assert [e.message for e in bad.errors] == [TOO_COSTLY]
        nxt = asyncio.ensure_future(items.__anext__())
        await asyncio.sleep(0.1)
        show.write_text(_notes("calm again"), "utf-8")
        good = await asyncio.wait_for(nxt, 30)
        assert not isinstance(good, ShowErrors)
        assert good.show.scenes[0].notes == "calm again"
    finally:
        stop.set()
        await items.aclose()
