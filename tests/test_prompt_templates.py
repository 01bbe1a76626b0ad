"""Helicone's prompt templates (`{{hc:name:type}}`): declaring variables, type checks, compiling
a version with a caller's inputs and body, version numbers, and the inputs kept with the log."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from heliograph.domain.prompts import (
    MAX_COMPILED_CHARS,
    MissingInput,
    PromptCall,
    PromptError,
    PromptTooLarge,
    Variable,
    WrongInputType,
    check_prompt_body,
    compile_prompt,
    inputs_property,
    next_version,
    prompt_call,
    variables,
)
from heliograph.domain.record import MAX_PROPERTY_VALUE_CHARS

TEMPLATE: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "temperature": "{{hc:temperature:number}}",
    "messages": [
        {"role": "system", "content": "You write about {{hc:topic:string}}."},
        {
            "role": "user",
            "content": "Be brief: {{ hc : brief : boolean }}. Topic: {{hc:topic:string}}",
        },
    ],
}


def call(inputs: dict[str, Any], **rest: Any) -> PromptCall:
    return PromptCall("p1", None, "production", inputs, rest)


def test_variables_are_found_once_each_in_order_with_their_types() -> None:
    assert variables(TEMPLATE) == (
        Variable("temperature", "number"),
        Variable("topic", "string"),
        Variable("brief", "boolean"),
    )
    assert check_prompt_body(TEMPLATE) == variables(TEMPLATE)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": [{"content": "{{hc:x:date}}"}]}, "type 'date'"),
        ({"messages": [{"content": "{{hc:x:string}} {{hc:x:number}}"}]}, "both string and number"),
        ([], "must be a JSON object"),
        ({"messages": "hi"}, "list of message objects"),
        ({"messages": ["hi"]}, "list of message objects"),
        ({"model": 4}, "model must be a string"),
        ({"prompt_id": "p", "messages": []}, "cannot itself name a prompt"),
    ],
)
def test_a_bad_prompt_body_is_refused_saying_why(body: Any, says: str) -> None:
    with pytest.raises(PromptError, match=says):
        check_prompt_body(body)


def test_compiling_substitutes_inputs_with_their_types() -> None:
    compiled = compile_prompt(
        TEMPLATE, call({"temperature": "0.5", "topic": "owls", "brief": "yes"})
    )
    assert compiled["temperature"] == 0.5  # a value that is one variable takes its type
    assert compiled["messages"] == [
        {"role": "system", "content": "You write about owls."},
        {"role": "user", "content": "Be brief: true. Topic: owls"},
    ]
    assert compiled["model"] == "gpt-4o-mini"
    assert "{{" not in orjson.dumps(compiled).decode()


def test_the_callers_messages_follow_and_its_other_fields_win() -> None:
    extra = [{"role": "user", "content": "and bats?"}]
    compiled = compile_prompt(
        TEMPLATE,
        call({"temperature": 1, "topic": "owls", "brief": False}, messages=extra, model="gpt-4o"),
    )
    assert compiled["messages"][-1] == extra[0]
    assert len(compiled["messages"]) == 3
    assert compiled["model"] == "gpt-4o"
    assert compiled["temperature"] == 1


def test_a_missing_input_is_named() -> None:
    with pytest.raises(MissingInput, match="needs inputs: temperature, brief"):
        compile_prompt(TEMPLATE, call({"topic": "owls"}))


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        ({"temperature": "warm", "topic": "owls", "brief": True}, "'temperature' must be a number"),
        ({"temperature": True, "topic": "owls", "brief": True}, "'temperature' must be a number"),
        ({"temperature": "nan", "topic": "owls", "brief": True}, "'temperature' must be a number"),
        ({"temperature": 1, "topic": "owls", "brief": "maybe"}, "'brief' must be a boolean"),
        ({"temperature": 1, "topic": ["owls"], "brief": True}, "'topic' must be a string"),
        ({"temperature": 1, "topic": {"a": 1}, "brief": True}, "'topic' must be a string"),
    ],
)
def test_a_wrongly_typed_input_is_named(inputs: dict[str, Any], says: str) -> None:
    with pytest.raises(WrongInputType, match=says):
        compile_prompt(TEMPLATE, call(inputs))


def test_a_chat_body_naming_a_prompt_is_read_and_its_prompt_fields_dropped() -> None:
    body = {"prompt_id": "abc", "inputs": {"topic": "owls"}, "stream": True}
    found = prompt_call(body)
    assert found == PromptCall("abc", None, "production", {"topic": "owls"}, {"stream": True})
    pinned = prompt_call({"prompt_id": "abc", "version_id": "v9", "environment": "staging"})
    assert pinned is not None
    assert (pinned.version_id, pinned.environment) == ("v9", "staging")
    assert prompt_call({"model": "gpt-4o"}) is None
    assert prompt_call([1, 2]) is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"prompt_id": 3}, "prompt_id must be a string"),
        ({"prompt_id": ""}, "prompt_id must be a string"),
        ({"prompt_id": "x" * 65}, "prompt_id must be a string"),
        ({"prompt_id": "a", "version_id": 1}, "version_id must be a string"),
        ({"prompt_id": "a", "environment": "Prod uction"}, "environment must be"),
        ({"prompt_id": "a", "environment": "../x"}, "environment must be"),
        ({"prompt_id": "a", "inputs": ["x"]}, "inputs must be an object"),
        ({"prompt_id": "a", "inputs": {str(i): i for i in range(300)}}, "at most 256 inputs"),
    ],
)
def test_a_malformed_prompt_reference_is_refused(body: dict[str, Any], says: str) -> None:
    with pytest.raises(PromptError, match=says):
        prompt_call(body)


def test_version_numbers_go_up_by_minor_within_a_major_or_to_the_next_major() -> None:
    versions = [(1, 0), (1, 1), (2, 0), (1, 2)]
    assert next_version(versions, (1, 1), new_major=False) == (1, 3)
    assert next_version(versions, (2, 0), new_major=False) == (2, 1)
    assert next_version(versions, (1, 0), new_major=True) == (3, 0)


def test_the_inputs_property_fits_a_property_value() -> None:
    assert orjson.loads(inputs_property({"topic": "owls", "n": 3})) == {"topic": "owls", "n": 3}
    huge = inputs_property({"a": "x" * 50_000, "b": "y" * 50_000})
    assert len(huge) <= MAX_PROPERTY_VALUE_CHARS
    cut = orjson.loads(huge)
    assert set(cut) == {"a", "b"}
    assert cut["a"].startswith("xxx")


def test_the_characters_inputs_add_are_capped_before_substituting() -> None:
    template = {"messages": [{"role": "user", "content": "{{hc:x:string}} " * 1000}]}
    fits = "a" * (MAX_COMPILED_CHARS // 1000)
    assert len(compile_prompt(template, call({"x": fits}))["messages"][0]["content"]) == (
        (len(fits) + 1) * 1000
    )
    with pytest.raises(PromptTooLarge, match="larger than"):
        compile_prompt(template, call({"x": fits + "a"}))


@pytest.mark.parametrize(
    ("given", "compiled"),
    [("1e20", 1e20), (10**30, 1e30), ("-99999999999999999999", -1e20), ("7", 7), (7, 7)],
)
def test_numbers_beyond_64_bits_become_floats(given: Any, compiled: Any) -> None:
    body = compile_prompt(TEMPLATE, call({"temperature": given, "topic": "t", "brief": True}))
    assert body["temperature"] == compiled
    assert type(body["temperature"]) is type(compiled)
    orjson.dumps(body)  # encodable as the gateway sends it
