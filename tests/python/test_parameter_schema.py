"""The typed helpers (``client.weather.forecast(...)``) against the core's
parameter schema, field by field: every helper takes exactly the parameters
the core declares, with the same types, the same required ones and the same
defaults, and forwards every one of them to the core under its name."""

from __future__ import annotations

import datetime
import inspect
import typing
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import pytest

import polyrelay
from polyrelay._families import Message, Names, ResponseFormat

SCHEMAS: Dict[str, Dict[str, Any]] = polyrelay.parameter_schema()


def expected_type(prop: Dict[str, Any]) -> Any:
    """The Python annotation of a parameter of this JSON Schema."""
    alternatives = prop.get("anyOf", [])
    if "enum" in prop:
        return Literal[tuple(prop["enum"])]
    if any(a.get("format") == "date" for a in alternatives):
        return Union[str, datetime.date]
    if prop.get("type") == ["array", "string"] or any(
        a.get("type") == "array" for a in alternatives
    ):
        return Names
    if prop.get("type") == "array":
        # Messages and tools alike are lists of JSON objects.
        return Sequence[Message]
    if alternatives and all(a.get("type") == "object" for a in alternatives):
        # Only objects (``response_format``): a mapping, or in Python a
        # pydantic model class standing for one.
        return ResponseFormat
    if any(a.get("type") == "object" for a in alternatives):
        return Union[str, Mapping[str, Any]]
    return {"string": str, "integer": int, "number": float, "boolean": bool}[prop["type"]]


def helper(capability: str, call: Any) -> Any:
    """The typed helper of ``capability``, on a family that hands its calls
    to ``call``."""
    family, method = capability.split(".")
    with polyrelay.Client() as client:
        family_type = type(getattr(client, family))
    return getattr(family_type(call), method)


def mismatches(capability: str) -> List[str]:
    """How the helper of ``capability`` differs from the core's schema."""
    schema = SCHEMAS[capability]
    properties: Dict[str, Any] = schema["properties"]
    required = set(schema["required"])
    method = helper(capability, lambda *args, **kwargs: None)
    signature = inspect.signature(method)
    hints = typing.get_type_hints(method)
    found = []
    helper_names = set(signature.parameters)
    if helper_names != set(properties):
        found.append(
            f"names: helper has {sorted(helper_names - set(properties))} more, "
            f"{sorted(set(properties) - helper_names)} fewer"
        )
    for name, parameter in signature.parameters.items():
        prop = properties.get(name)
        if prop is None:
            continue
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            found.append(f"{name}: not keyword-only")
        has_default = "default" in prop
        if name in required:
            want_type = expected_type(prop)
            want_default: Any = inspect.Parameter.empty
        elif has_default:
            want_type = expected_type(prop)
            want_default = prop["default"]
        else:
            want_type = Optional[expected_type(prop)]
            want_default = None
        if hints.get(name) != want_type:
            found.append(f"{name}: type {hints.get(name)}, core says {want_type}")
        default = parameter.default
        if isinstance(default, tuple):
            default = list(default)
        if default != want_default:
            found.append(f"{name}: default {default!r}, core says {want_default!r}")
    return found


@pytest.mark.parametrize("capability", sorted(SCHEMAS))
def test_every_helper_takes_the_cores_parameters(capability: str) -> None:
    assert mismatches(capability) == []


@pytest.mark.parametrize("capability", sorted(SCHEMAS))
def test_every_helper_forwards_every_parameter_to_its_capability(capability: str) -> None:
    schema = SCHEMAS[capability]
    properties: Dict[str, Any] = schema["properties"]
    calls: List[Tuple[str, Dict[str, Any]]] = []

    def record(name: str, /, **params: Any) -> None:
        calls.append((name, params))

    method = helper(capability, record)
    # Every parameter given at its example, whatever the alternatives say:
    # the helper forwards, the core validates.
    examples = {name: prop["examples"][0] for name, prop in properties.items()}
    method(**examples)
    assert calls == [(capability, examples)]
    # Left out, a parameter with a default is sent at the core's default.
    calls.clear()
    method(**{name: examples[name] for name in schema["required"]})
    [(name, sent)] = calls
    for parameter, prop in properties.items():
        if "default" in prop:
            value = sent[parameter]
            assert (list(value) if isinstance(value, tuple) else value) == prop["default"]


def test_the_schema_is_the_cores_and_reachable_per_capability() -> None:
    assert set(SCHEMAS) == {c["name"] for c in polyrelay.capabilities()}
    forecast = polyrelay.parameter_schema("weather.forecast")
    assert forecast == SCHEMAS["weather.forecast"]
    assert forecast["properties"]["days"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 16,
        "default": 3,
        "description": "Number of days, today included.",
        "examples": [7],
    }
    with pytest.raises(polyrelay.InvalidRequestError):
        polyrelay.parameter_schema("weather.tomorrow")
