"""``response_format`` from Python: ``client.llm.chat`` and ``llm.stream``
pass it to the core as given, a pydantic model class becomes its JSON
Schema (pydantic stays optional), and an answer that is not the JSON asked
for is never handed on. The emulator's recorded answers are plain text, so
they are the answers that fail; a valid answer coming back parsed is
checked per provider by the core's tests (``core/tests/structured_output.rs``)."""

from __future__ import annotations

import json
import sys
from typing import Any, Dict

import pytest

import polyrelay
from polyrelay.testing import Emulator

HELLO = [{"role": "user", "content": "What is the capital of France?"}]
KEYS = {"groq": "gsk-test", "mistral": "mistral-test"}
CITY: Dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    },
}


def client(*chain: str) -> polyrelay.Client:
    return polyrelay.Client(
        {
            "cache": {"enabled": False},
            "defaults": {"retry": {"max_attempts": 1}},
            "capabilities": {"llm.chat": {"chain": list(chain)}},
        },
        api_keys=KEYS,
    )


def sent_body(emu: Emulator, path: str) -> Dict[str, Any]:
    return json.loads(emu.requests(path)[-1].body)


def test_a_text_answer_to_a_json_request_falls_over_and_is_never_returned(emu: Emulator) -> None:
    with client("mistral", "groq") as c:
        with pytest.raises(polyrelay.AllProvidersFailedError) as failed:
            c.llm.chat(messages=HELLO, response_format=CITY)
    outcomes = [(a.provider, a.outcome) for a in failed.value.attempts]
    assert outcomes == [("mistral", "malformed_response"), ("groq", "malformed_response")]
    assert "not JSON" in failed.value.attempts[0].reason
    mistral = sent_body(emu, "/mistral/v1/chat/completions")
    assert mistral["response_format"] == {**CITY, "json_schema": {**CITY["json_schema"], "strict": False}}
    # Groq's default model takes no schema: JSON mode, the schema told.
    groq = sent_body(emu, "/groq/openai/v1/chat/completions")
    assert groq["response_format"] == {"type": "json_object"}
    assert '"required":["name"]' in groq["messages"][0]["content"]


def test_a_pydantic_model_class_is_sent_as_its_json_schema(emu: Emulator) -> None:
    pydantic = pytest.importorskip("pydantic")

    class City(pydantic.BaseModel):
        name: str
        population: int

    with client("mistral") as c:
        with pytest.raises(polyrelay.AllProvidersFailedError):
            c.llm.chat(messages=HELLO, response_format=City)
    sent = sent_body(emu, "/mistral/v1/chat/completions")["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "City"
    assert sent["json_schema"]["schema"] == City.model_json_schema()


def test_pydantic_is_not_imported_unless_a_class_is_given() -> None:
    # Run in a fresh interpreter: this one may have imported it already.
    import subprocess

    code = (
        "import sys, polyrelay\n"
        "from polyrelay._families import _response_format\n"
        "_response_format({'type': 'json_object'})\n"
        "print('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_class_that_is_no_model_and_an_invalid_schema_fail_before_sending(emu: Emulator) -> None:
    class NotAModel:
        pass

    with client("mistral") as c:
        with pytest.raises(TypeError, match="pydantic model class"):
            c.llm.chat(messages=HELLO, response_format=NotAModel)
        bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strin"}}}
        with pytest.raises(polyrelay.InvalidRequestError) as invalid:
            c.llm.chat(messages=HELLO, response_format=bad)
        assert "response_format.json_schema.schema" in str(invalid.value)
        with pytest.raises(polyrelay.InvalidRequestError):
            c.llm.stream(messages=HELLO, response_format=bad)
    assert emu.requests() == []


def test_a_plain_answer_has_no_parsed_value(emu: Emulator) -> None:
    with client("mistral") as c:
        result = c.llm.chat(messages=HELLO)
    assert result.parsed is None
    assert result.data["parsed"] is None
    assert "parsed" in result.to_dict()["data"]


def test_a_streamed_text_answer_to_a_json_request_ends_interrupted(emu: Emulator) -> None:
    path = emu.stream("groq")
    with client("groq") as c:
        stream = c.llm.stream(messages=HELLO, response_format={"type": "json_object"})
        with pytest.raises(polyrelay.StreamInterruptedError) as interrupted:
            for _ in stream:
                pass
    assert interrupted.value.provider == "groq"
    assert interrupted.value.partial_text == "The capital of France is Paris."
    assert "malformed" in interrupted.value.message
    assert sent_body(emu, path)["response_format"] == {"type": "json_object"}
