"""The two YAML paths (rapidyaml fast, ruamel exact) give the same nodes at the same positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from showrunner.show import yaml as Y

ROOT = Path(__file__).resolve().parents[2]

SNIPPETS = {
    "plain": "title: t\nscenes:\n  - name: a\n    duration: 8\n",
    "scalars": "a: 1\nb: 1.5\nc: true\nd: True\ne: yes\nf: ~\ng: null\nh: 0x1F\ni: 1_000\nj: .inf\n"
               "k: -.Inf\nl: .NaN\nm: 2001-12-14\nn: +5\no: 1:30\np: 0o17\nq: 1e3\n",
    "null values": "a:\nb: # comment\nc: \nd: {x: , y: 1}\ne: 2\n",
    "null plain": "a:\nc: \nd: {x: , y: 1}\n'q':\ne: 2\n",
    "quoted": "a: 'it''s'\nb: \"tab\\tq \\u00e9 \\x41\"\nc: ''\nd: \"\"\n'e k': 1\n\"f\\tk\": 2\n"
              "g: \"multi\n  line\"\nh: 'also\n\n  two'\n",
    "blocks": "a: |\n  lit\n  eral\nb: >-\n  fo\n  ld\nc: |+\n  keep\n\nd: >2\n   indented\n"
              "e: | # c\n  x\nf: |\ng: 1\n",
    "block in list": "a:\n  - |\n    one\n  - >\n    two\n    lines\n",
    "flow": "a: [1, \"2\", three, [x, {p: q}], {}]\nb: {k: v, 'l': [ ], m: {}}\nc: []\nd: {}\n"
            "e: [\n  1,\n  2,\n  ]\n",
    "anchors": "base: &b\n  x: 1\n  y: [1, 2]\ns: &s hello\nuse:\n  - <<: *b\n    z: 3\n  - *s\n"
               "  - &m {q: 1}\n  - *m\nagain: &s bye\nlast: *s\n",
    "merge list": "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n",
    "comments": "# head\na: 1 # tail\n# mid\nb:\n  # inside\n  - x # one\n  - y\n\n# end\n",
    "unicode": "titel: \"Café ☕\"\nprompt: über den Wolken, ünïcødé 🌧 rain\nnext: 1\n",
    "crlf": "a: 1\r\nb:\r\n  - x\r\n  - 'y'\r\nc: |\r\n  z\r\n",
    "first marker": "---\na: 1\nb: [2]\n",
    "end marker": "a: 1\n...\n",
    "nested lists": "- - a\n  - b\n- - - c\n- k: v\n",
    "root list": "- a\n- b\n",
    "root scalar": "just text\n",
    "empty": "",
    "comment only": "# nothing\n",
    "tilde doc": "~\n",
    "plain multi": "a: one\n  two\n  three\nb: x\n",
    "specials": "a: http://x.y/z?q=1#frag\nb: 'a: b'\nc: 50% off\nd: x#y\ne: -1\n"
                "f: - not a list\n",
    "colon space key": "a  : 1\nb :\n",
    "explicit key": "? a\n: 1\n? b\n",
    "indentless": "a:\n- x\n- y\nb:\n- k: v\n  j: w\n",
    "long": "a: " + "x" * 5000 + "\n",
    "deep ok": "a: " + "[" * 98 + "1" + "]" * 98 + "\n",
    "deep bad": "a: " + "[" * 120 + "1" + "]" * 120 + "\n",
    "dup anchors": "a: &x 1\nb: &x 2\nc: *x\n",
    "undefined alias": "a: *nope\n",
    "tab": "a:\n\t- x\n",
    "tab in value": "a: 'x\ty'\n",
    "tag": "a: !!str 5\nb: !custom x\n",
    "two docs": "a: 1\n---\nb: 2\n",
    "directive": "%YAML 1.2\n---\na: 1\n",
    "syntax": "a: [1, 2\nb: c\n",
    "two colons": "a: b: c\n",
    "bad indent": "a:\n  b: 1\n c: 2\n",
    "control": "a: x\x07y\n",
    "null item": "a:\n  - \n  - x\n",
    "at sign": "a: @x\n",
    "backtick": "a: `x`\n",
    "empty key": ": x\n",
    "map in list of maps": "scenes:\n  -\n    name: a\n  - name: b\n    prompts:\n"
                           "      - text: p\n        weight: 1\n",
    "anchor on list": "a: &l\n  - 1\n  - 2\nb: *l\n",
    "quoted keys merge": "\"<<\": 1\n'a': &q\n  'b': 2\n",
    "bom": "\ufeffa: 1\n",
    "trailing spaces": "a: x   \nb: 'y'   \nc:   z\n",
    "doc end marker inline": "a: '...'\nb: ---\n",
}


def dump(node: Y.Node | None, seen: dict[int, int] | None = None) -> Any:
    if node is None:
        return None
    seen = {} if seen is None else seen
    if id(node) in seen:
        return ("alias", seen[id(node)])
    seen[id(node)] = len(seen)
    if node.kind == Y.MAP:
        value: Any = [(dump(k, seen), dump(v, seen)) for k, v in node.value]
    elif node.kind == Y.SEQ:
        value = [dump(item, seen) for item in node.value]
    else:
        value = node.value
    return (node.kind, node.tag, node.line, node.col, value)


def outcome(text: str, fast: bool) -> Any:
    try:
        parsed = Y.compose(text, fast=fast)
    except Y.YamlProblem as problem:
        return ("problem", problem.message, problem.line, problem.col)
    return ("ok", dump(parsed.root))


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_fast_and_exact_paths_agree(name: str) -> None:
    text = SNIPPETS[name]
    assert outcome(text, fast=True) == outcome(text, fast=False)


def test_fast_path_takes_ordinary_shows() -> None:
    """The fast path is really used for ordinary text (not always left to ruamel)."""
    for name in ("plain", "scalars", "quoted", "blocks", "flow", "anchors", "unicode", "crlf",
                 "comments", "indentless", "deep ok", "null plain"):
        text = SNIPPETS[name]
        assert Y._fast_allowed(text), name
        assert Y._Fast.compose(text) is not None, name


def files() -> list[Path]:
    found = [*ROOT.glob("shows/**/*.yaml"), *ROOT.glob("tests/corpus/**/*.yaml")]
    return sorted(p for p in found if p.is_file())


@pytest.mark.parametrize("path", files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_paths_agree_on_every_show_and_corpus_file(path: Path) -> None:
    text = path.read_bytes().decode("utf-8", "replace")
    assert outcome(text, fast=True) == outcome(text, fast=False)


def test_upsert_item_keeps_comments_and_layout() -> None:
    from showrunner.show.yaml import upsert_item

    text = (
        "# my set\n"
        "title: t   # the title\n"
        "controls:\n"
        "  - {note: 36, do: go}    # the big pad\n"
        "  - {cc: 21, input: fader}\n"
        "scenes:\n"
        "  - name: a   # first\n"
        "    prompts: 'quoted'\n"
    )
    added = upsert_item(text, "controls", {"note": 40, "do": "back"}, lambda old: old.get("note") == 40)
    assert added == text.replace("  - {cc: 21, input: fader}\n",
                                 "  - {cc: 21, input: fader}\n  - {note: 40, do: back}\n")
    replaced = upsert_item(text, "controls", {"note": 36, "do": "panic"},
                           lambda old: old.get("note") == 36)
    assert "  - {note: 36, do: panic}" in replaced and "do: go" not in replaced
    assert "# my set" in replaced and "# first" in replaced and "'quoted'" in replaced


def test_upsert_item_creates_the_list_and_refuses_what_is_not_one() -> None:
    from showrunner.show.yaml import YamlProblem, upsert_item

    created = upsert_item("title: t\nscenes: []\n", "controls", {"program": 1, "goto": "a"},
                          lambda old: False)
    assert created == "title: t\nscenes: []\ncontrols:\n  - {program: 1, goto: a}\n"
    with pytest.raises(YamlProblem, match="`controls` is not a list"):
        upsert_item("title: t\ncontrols: 3\n", "controls", {"note": 1}, lambda old: False)
    with pytest.raises(YamlProblem):
        upsert_item("title: [\n", "controls", {"note": 1}, lambda old: False)


@pytest.mark.parametrize("path", files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plain_items_are_the_data_their_nodes_build(path: Path) -> None:
    """`plain`: a scene that is plain data comes built (the data the nodes build, placed where
    the node is), any other as nodes; the text takes the same path (fast or exact) either way."""
    from showrunner.errors import ShowErrors
    from showrunner.show.load import read_yaml

    text = path.read_bytes().decode("utf-8", "replace")
    try:
        nodes = Y.compose(text)
        built = Y.compose(text, plain="scenes", refuse=("include", "each"))
        data = read_yaml(path)
    except (Y.YamlProblem, Y.TooManyNodes, ShowErrors):
        return
    assert (built.data is None) == (nodes.data is None)
    written, read = scenes_of(nodes.root), scenes_of(built.root)
    assert len(written) == len(read)
    for i, (node, item) in enumerate(zip(written, read, strict=True)):
        assert (item.line, item.col) == (node.line, node.col)
        if item.tag == Y.PLAIN_TAG:
            assert item.value[0] == data["scenes"][i]
        else:
            assert dump(item) == dump(node)


def scenes_of(root: Y.Node | None) -> list[Y.Node]:
    if root is None or root.kind != Y.MAP:
        return []
    scenes = next((v for k, v in root.value if k.value == "scenes"), None)
    return scenes.value if scenes is not None and scenes.kind == Y.SEQ else []


def test_plain_takes_plain_scenes_only() -> None:
    text = ("scenes:\n  - name: a\n    n: [1, 0x1f, 2.5, true, ~, 2024-01-01, 'q']\n"
            "  - name: b\n    p: '{{ x }}'\n  - name: c\n    p: &a 1\n  - name: d\n    p: *a\n"
            "  - name: e\n    p:\n    q: 1\n  - include: f.yaml\n  - {name: g}\n  - name: h\n    n: 1\n"
            "    n: 2\n  - name: i\n    1: x\n  - name: j\n    b: True\n")
    root = Y.compose(text, plain="scenes", refuse=("include",)).root
    assert root is not None
    items = root.value[0][1].value
    plain = {i: item.value for i, item in enumerate(items) if item.tag == Y.PLAIN_TAG}
    assert plain == {
        0: ({"name": "a", "n": [1, 31, 2.5, True, None, "2024-01-01", "q"]}, 10),
        9: ({"name": "j", "b": True}, 3),
    }
    assert (items[0].line, items[0].col) == (2, 5)
