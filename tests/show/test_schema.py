"""The show-file JSON Schema: generated from the model, committed, and true to the file format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from showrunner.show.load import read_yaml
from showrunner.show.schema import SCHEMA_ID, schema_text, show_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "show.schema.json"
EXAMPLES = sorted((ROOT / "shows").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text("utf-8") == schema_text(), (
        "schemas/show.schema.json is stale; regenerate it with "
        "`showrunner schema > schemas/show.schema.json` "
        "(or `python -c 'from showrunner.show.schema import schema_text; "
        "print(schema_text(), end=\"\")' > schemas/show.schema.json`)"
    )


def test_schema_header() -> None:
    schema = show_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["title"] and schema["description"]
    assert schema["required"] == ["title", "scenes"]
    assert schema_text().endswith("}\n")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_as_written(path: Path, validator: jsonschema.Draft202012Validator) -> None:
    assert _errors(validator, read_yaml(path)) == []


def test_file_forms_validate(validator: jsonschema.Draft202012Validator) -> None:
    data = {
        "title": "{{ venue }}",
        "vars": {"venue": "x", "n": 3},
        "include": {"lib": "lib.yaml"},
        "scenes": [
            {"name": "a", "duration": "{{ n * 2 }}", "prompts": "{{ lib.a }}"},
            {"include": "more.yaml"},
            {"each": "{{ moods }}", "as": "mood", "scene": {"name": "m-{{ loop.index }}"}},
            {"each": 3, "scene": {"name": "n{{ item }}", "vace": {"refs": ["{{ item }}"]}}},
        ],
    }
    assert _errors(validator, data) == []


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"title": "t", "scenes": [{"name": "a", "duraton": 4}]}, "['scenes', 0]"),
        ({"title": "t", "scenes": [{"name": "a", "noise_scale": 2}]}, "['scenes', 0]"),
        ({"title": "t", "scenes": [{"include": "a.yaml", "name": "x"}]}, "['scenes', 0]"),
        ({"title": "t", "scenes": [{"each": [1], "as": "a b", "scene": {"name": "x"}}]},
         "['scenes', 0]"),
        ({"title": "t", "scenes": []}, "['scenes']"),
        ({"scenes": [{"name": "a"}]}, "[]"),
        ({"title": "t", "scenes": [{"name": "a"}], "loop": "sometimes"}, "['loop']"),
    ],
    ids=["typo", "range", "include-extra", "each-as", "no-scenes", "no-title", "loop"],
)
def test_mistakes_are_rejected(
    data: dict[str, Any], where: str, validator: jsonschema.Draft202012Validator
) -> None:
    errors = _errors(validator, data)
    assert errors and errors[0].startswith(where)


def test_descriptions_reach_the_editor() -> None:
    scene = show_schema()["$defs"]["Scene"]["properties"]
    assert "GO" in scene["cue"]["description"]
    assert "Template" in json.dumps(scene["duration"])
