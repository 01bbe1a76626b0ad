"""Prompt templates in Helicone's syntax (`{{hc:name:type}}`): the variables a body declares,
the type checks, `major.minor` version numbers, and compiling a stored version with a caller's
inputs into the chat-completion body that is forwarded."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.json_values import INT64_MAX, strings_in
from heliograph.domain.record import MAX_PROPERTY_VALUE_CHARS
from heliograph.domain.text import cut_text

TEMPLATE = re.compile(
    r"\{\{\s*hc\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*\}\}"
)
TYPES = ("string", "number", "boolean")
BOOLEAN_WORDS = {"true": True, "false": False, "yes": True, "no": False}
DEFAULT_ENVIRONMENT = "production"
# The fields of a chat-completion body that name a prompt; never forwarded to the provider.
PROMPT_FIELDS = ("prompt_id", "version_id", "environment", "inputs")
MAX_ID_CHARS = 64
MAX_ENVIRONMENT_CHARS = 64
MAX_INPUTS = 256
MAX_VARIABLES = 256
MAX_DEPTH = 32  # how deep a template is walked for variables
# The most characters the inputs may add to a compiled body: a short input in a template that
# repeats its variable thousands of times would otherwise grow to gigabytes.
MAX_COMPILED_CHARS = 8 * 1024 * 1024
ENVIRONMENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# The properties that link a request to the prompt version it was compiled from.
PROMPT_ID_PROPERTY = "Helicone-Prompt-Id"
PROMPT_VERSION_PROPERTY = "Helicone-Prompt-Version"
PROMPT_ENVIRONMENT_PROPERTY = "Helicone-Prompt-Environment"
PROMPT_INPUTS_PROPERTY = "Helicone-Prompt-Inputs"


class PromptError(InvalidInput):
    """A prompt body, a variable or a prompt reference is refused; the message says which."""

    code = "invalid_prompt"


class UnknownPrompt(PromptError):
    """The prompt, version or environment a request names does not exist (for this caller)."""

    code = "unknown_prompt"


class MissingInput(PromptError):
    code = "missing_prompt_input"


class WrongInputType(PromptError):
    code = "invalid_prompt_input"


class PromptTooLarge(PromptError):
    """A version's body, or the body its inputs would compile to, over its cap."""

    status = 413
    code = "prompt_too_large"


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class PromptCall:
    """What a chat-completion body asks of a prompt: which version (by id, or the one deployed
    to an environment), with which inputs, and the rest of the body as the caller sent it."""

    prompt_id: str
    version_id: str | None
    environment: str
    inputs: Mapping[str, Any]
    rest: dict[str, Any] = field(default_factory=dict)


def variables(body: Any) -> tuple[Variable, ...]:
    """The distinct variables a prompt body declares, in order of first use; a variable of an
    unknown type, or declared with two types, is a `PromptError`."""
    found: dict[str, Variable] = {}
    for text in strings_in(body, MAX_DEPTH):
        for match in TEMPLATE.finditer(text):
            name, kind = match.group(1), match.group(2)
            if kind not in TYPES:
                raise PromptError(
                    f"variable {name!r} has type {kind!r}; the types are {', '.join(TYPES)}"
                )
            known = found.get(name)
            if known is not None and known.type != kind:
                raise PromptError(f"variable {name!r} is declared both {known.type} and {kind}")
            found.setdefault(name, Variable(name, kind))
            if len(found) > MAX_VARIABLES:
                raise PromptError(f"a prompt may declare at most {MAX_VARIABLES} variables")
    return tuple(found.values())


def check_prompt_body(body: Any) -> tuple[Variable, ...]:
    """A prompt body is an OpenAI chat-completion request (an object, `messages` a list of
    objects when present) whose variables are well typed; returns the variables."""
    if not isinstance(body, dict):
        raise PromptError("promptBody must be a JSON object (an OpenAI chat-completion request)")
    messages = body.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise PromptError("promptBody.messages must be a list of message objects")
    model = body.get("model", "")
    if not isinstance(model, str):
        raise PromptError("promptBody.model must be a string")
    if any(name in body for name in PROMPT_FIELDS):
        raise PromptError("promptBody cannot itself name a prompt (prompt_id, inputs, ...)")
    return variables(body)


def prompt_call(body: Any) -> PromptCall | None:
    """The prompt a chat-completion body names, or None when it names none; a malformed
    reference is a `PromptError` that says which field."""
    if not isinstance(body, dict) or "prompt_id" not in body:
        return None
    prompt_id = body["prompt_id"]
    if not isinstance(prompt_id, str) or not 0 < len(prompt_id) <= MAX_ID_CHARS:
        raise PromptError(f"prompt_id must be a string of 1 to {MAX_ID_CHARS} characters")
    version_id = body.get("version_id")
    if version_id is not None and (
        not isinstance(version_id, str) or not 0 < len(version_id) <= MAX_ID_CHARS
    ):
        raise PromptError(f"version_id must be a string of 1 to {MAX_ID_CHARS} characters")
    environment = body.get("environment", DEFAULT_ENVIRONMENT)
    if environment is None:
        environment = DEFAULT_ENVIRONMENT
    check_environment(environment)
    inputs = body.get("inputs", {})
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise PromptError("inputs must be an object of variable names to values")
    if len(inputs) > MAX_INPUTS:
        raise PromptError(f"at most {MAX_INPUTS} inputs")
    rest = {key: value for key, value in body.items() if key not in PROMPT_FIELDS}
    return PromptCall(prompt_id, version_id, environment, inputs, rest)


def check_environment(environment: Any) -> str:
    """An environment name: lower-case letters, digits, `-` and `_`, at most 64 characters."""
    if not isinstance(environment, str) or not ENVIRONMENT_NAME.fullmatch(environment):
        raise PromptError(
            "environment must be 1 to 64 lower-case letters, digits, '-' or '_'"
            " (production, staging, ...)"
        )
    return environment


def compile_prompt(template: dict[str, Any], call: PromptCall) -> dict[str, Any]:
    """The body to forward: the version's body with the inputs substituted, its messages first
    and then any the caller sent, and the caller's other fields winning over the version's."""
    values = prompt_values(template, call)
    compiled_chars(template, values)
    return compile_with(template, call, values)


def prompt_values(template: dict[str, Any], call: PromptCall) -> dict[str, Any]:
    """Each declared variable's input, as its type; `MissingInput` or `WrongInputType` naming
    the variable otherwise."""
    declared = variables(template)
    missing = [v.name for v in declared if v.name not in call.inputs]
    if missing:
        raise MissingInput(f"prompt {call.prompt_id} needs inputs: {', '.join(missing)}")
    return {v.name: _typed(v, call.inputs[v.name]) for v in declared}


def compiled_chars(template: dict[str, Any], values: Mapping[str, Any]) -> int:
    """How many characters the inputs add to the template (an upper bound, read without
    substituting); `PromptTooLarge` beyond `MAX_COMPILED_CHARS`."""
    sizes = {name: len(_plain(value)) for name, value in values.items()}
    added = 0
    for text in strings_in(template, MAX_DEPTH):
        added += sum(sizes[match.group(1)] for match in TEMPLATE.finditer(text))
        if added > MAX_COMPILED_CHARS:
            raise PromptTooLarge(
                f"the inputs would make the compiled prompt larger than {MAX_COMPILED_CHARS:,}"
                " characters"
            )
    return added


def compile_with(
    template: dict[str, Any], call: PromptCall, values: Mapping[str, Any]
) -> dict[str, Any]:
    """`compile_prompt` once the values are typed and their size checked."""
    compiled = _substitute(template, values, 0)
    assert isinstance(compiled, dict)
    merged = {**compiled, **call.rest}
    sent = call.rest.get("messages")
    if sent is not None:
        if not isinstance(sent, list):
            raise PromptError("messages must be a list")
        merged["messages"] = [*compiled.get("messages", []), *sent]
    return merged


def next_version(
    versions: list[tuple[int, int]], base: tuple[int, int], new_major: bool
) -> tuple[int, int]:
    """The number of a version made from `base`: the next major (`n+1.0`) or the next minor
    within `base`'s major."""
    if new_major:
        return max(major for major, _ in versions) + 1, 0
    minors = [minor for major, minor in versions if major == base[0]]
    return base[0], max(minors) + 1


def version_text(major: int, minor: int) -> str:
    return f"{major}.{minor}"


def inputs_property(inputs: Mapping[str, Any]) -> str:
    """The inputs as the JSON text of one property, at most `MAX_PROPERTY_VALUE_CHARS`: each
    value is cut evenly when the whole would not fit."""
    text = _json(inputs)
    if len(text) <= MAX_PROPERTY_VALUE_CHARS or not inputs:
        return text
    share = max(MAX_PROPERTY_VALUE_CHARS // (2 * len(inputs)), 16)
    cut = {cut_text(k, 256): cut_text(_plain(v), share) for k, v in inputs.items()}
    return _json(cut)[:MAX_PROPERTY_VALUE_CHARS]


def _typed(variable: Variable, value: Any) -> Any:
    """The input as its declared type, or a `WrongInputType` naming the variable."""
    if variable.type == "number":
        number = _number(value)
        if number is None:
            raise WrongInputType(f"input {variable.name!r} must be a number, got {_shown(value)}")
        return number
    if variable.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[value.lower()]
        raise WrongInputType(
            f"input {variable.name!r} must be a boolean (true, false, yes, no), got {_shown(value)}"
        )
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value if isinstance(value, str) else _plain(value)
    raise WrongInputType(f"input {variable.name!r} must be a string, got {_shown(value)}")


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # beyond 64 bits no JSON encoder takes it whole
        return value if abs(value) <= INT64_MAX else _number(str(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        whole = number.is_integer() and "." not in value and abs(number) <= INT64_MAX
        return int(number) if whole else number
    return None


def _substitute(value: Any, values: Mapping[str, Any], depth: int) -> Any:
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value.strip())
        if whole is not None:  # a value that is one variable takes its type (a temperature)
            return values[whole.group(1)]
        return TEMPLATE.sub(lambda match: _plain(values[match.group(1)]), value)
    if depth >= MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: _substitute(item, values, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, values, depth + 1) for item in value]
    return value


def _plain(value: Any) -> str:
    """A value as it reads inside text: `true`, not `True`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else _json(value)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits, from a caller parsed by the standard library
        return json.dumps(value, default=str, ensure_ascii=False)


def _shown(value: Any) -> str:
    text = _plain(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")
