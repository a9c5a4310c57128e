"""Contract checks: validate a payload we send against a vendor's OpenAPI schema, by name.

    from tests.psa.contract import CONNECTWISE_SPEC, HALOPSA_SPEC, assert_matches_schema
    assert_matches_schema(payload, "TimeEntry", spec=CONNECTWISE_SPEC)
    for action in actions:
        assert_matches_schema(action, "Actions", spec=HALOPSA_SPEC)

OpenAPI 3.0 schema objects are JSON Schema draft 4 plus a few keywords, so each spec is
converted once (and cached per file) into a draft-4 document:

- ``nullable: true`` becomes an added ``"null"`` type (and ``None`` in an ``enum``);
- ``$ref``s to ``#/components/schemas/X`` that exist are kept; any other ``$ref`` (the
  ConnectWise excerpt omits its targets) becomes ``{}``, i.e. anything is accepted there;
- ``strict=True`` (the default) rejects properties the named schema does not define, because
  a vendor silently ignores a misspelt field and that is exactly what a contract test is for.
  Pass ``strict=False`` when a vendor accepts fields its spec omits (HaloPSA's ``who``).

Formats checked: ``date-time`` (RFC 3339 with a zone), ``int32``, ``int64``, ``uuid``.
The schemas live in ``tests/psa/specs/`` (trimmed from the vendors' full documents; see the
README there for their sources and ``extract_schemas.py`` to refresh them).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema

SPECS_DIR = Path(__file__).resolve().parent / "specs"
CONNECTWISE_SPEC = SPECS_DIR / "connectwise-TimeEntry.json"
HALOPSA_SPEC = SPECS_DIR / "halopsa-Actions.json"

_REF_PREFIX = "#/components/schemas/"
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")


def _convert(schema: Any, known: set[str]) -> Any:
    """One OpenAPI schema object as JSON Schema draft 4 (recursing only into subschemas,
    never into maps of names, so a property called "nullable" or "$ref" stays a property)."""
    if not isinstance(schema, dict):
        return schema  # e.g. additionalProperties: true
    if "$ref" in schema:
        ref = schema["$ref"]
        resolvable = isinstance(ref, str) and ref.startswith(_REF_PREFIX)
        return {"$ref": ref} if resolvable and ref[len(_REF_PREFIX) :] in known else {}
    out = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: _convert(sub, known) for name, sub in out[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_convert(sub, known) for sub in out[key]]
    for key in _SCHEMA_VALUES:
        if key in out:
            out[key] = _convert(out[key], known)
    if out.pop("nullable", False):
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        elif "enum" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def load_schemas(spec: Path | str) -> dict[str, Any]:
    """All ``components.schemas`` of a spec file, converted; loaded once per path."""
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"Vendor schema {path} not found (see tests/psa/specs/README.md).")
    schemas = json.loads(path.read_text(encoding="utf-8"))["components"]["schemas"]
    known = set(schemas)
    return {name: _convert(schema, known) for name, schema in schemas.items()}


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats constrain strings only; "type" handles the rest
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return False
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        return False
    return True


def _int_range(bits: int):
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return lambda v: not isinstance(v, int) or isinstance(v, bool) or low <= v <= high


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("date-time")(_is_datetime)
FORMAT_CHECKER.checks("uuid")(_is_uuid)
FORMAT_CHECKER.checks("int32")(_int_range(32))
FORMAT_CHECKER.checks("int64")(_int_range(64))


@functools.cache
def validator_for(schema_name: str, *, spec: Path | str, strict: bool = True):
    schemas = load_schemas(spec)
    if schema_name not in schemas:
        raise KeyError(f"{schema_name!r} is not a schema in {spec}")
    root = dict(schemas[schema_name])
    if strict and "properties" in root and "additionalProperties" not in root:
        root["additionalProperties"] = False
    # The named schema is the root document, so "#/components/schemas/X" resolves inside it.
    root["components"] = {"schemas": schemas}
    jsonschema.Draft4Validator.check_schema(root)
    return jsonschema.Draft4Validator(root, format_checker=FORMAT_CHECKER)


def schema_errors(
    payload: Any, schema_name: str, *, spec: Path | str, strict: bool = True
) -> list[str]:
    """Readable violations (``path: message``), empty when the payload matches."""
    validator = validator_for(schema_name, spec=spec, strict=strict)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(payload)
    )


def assert_matches_schema(
    payload: Any, schema_name: str, *, spec: Path | str, strict: bool = True
) -> None:
    errors = schema_errors(payload, schema_name, spec=spec, strict=strict)
    assert not errors, f"payload does not match {schema_name}:\n" + "\n".join(errors)
