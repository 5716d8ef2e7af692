"""Environment interpolation of configuration string values.

Forms (the POSIX shell's, minus the ones that assign):

- ``${VAR}``            the value of VAR; an error if VAR is not set (a set but empty VAR gives "")
- ``${VAR:-default}``   VAR if set and not empty, else ``default``
- ``${VAR-default}``    VAR if set (even empty), else ``default``
- ``${VAR:?message}``   VAR if set and not empty, else an error carrying ``message``
- ``${VAR?message}``    VAR if set (even empty), else an error carrying ``message``
- ``$${``               a literal ``${`` (any other ``$`` is literal as it is)

Defaults may themselves contain references (``${A:-${B:-x}}``); they are resolved only when used.
Interpolation runs on the parsed document, on string values only (never on keys, never on the
raw text), so a variable's value cannot inject YAML structure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from kubestream.errors import ConfigError

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS: Final = (":-", ":?", "-", "?")
_FORMS_HINT: Final = "expected ${NAME}, ${NAME:-default} or ${NAME:?message}"
MAX_NESTING: Final = 16
"""References nested deeper than this are refused (resolving them recurses)."""
_MAX_SHOWN_REFERENCE: Final = 60

KeyPath = tuple[str | int, ...]


class InterpolationError(ValueError):
    """One reference could not be resolved; ``reference`` is the ``${...}`` text."""

    def __init__(self, reference: str, problem: str) -> None:
        self.reference = reference
        self.problem = problem
        shown = reference if len(reference) <= _MAX_SHOWN_REFERENCE else reference[: _MAX_SHOWN_REFERENCE - 3] + "..."
        super().__init__(f"{shown} — {problem}")


def format_key_path(path: KeyPath) -> str:
    """``("events", "types", 0)`` → ``events.types[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def interpolate_tree(value: object, environ: Mapping[str, str], path: KeyPath = ()) -> object:
    """A copy of ``value`` (parsed YAML/JSON) with every string value interpolated.

    Raises ``ConfigError`` naming the dotted key path of the first string that fails.
    """
    if isinstance(value, str):
        try:
            return interpolate_string(value, environ)
        except InterpolationError as exc:
            raise ConfigError(str(exc), key=format_key_path(path) or None) from None
    if isinstance(value, Mapping):
        return {key: interpolate_tree(item, environ, (*path, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate_tree(item, environ, (*path, index)) for index, item in enumerate(value)]
    return value


def interpolate_string(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with its ``${...}`` references resolved against ``environ``."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            out.append("${")
            i += 3
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise InterpolationError(text[i:], "unclosed reference: missing '}'")
            out.append(_resolve(text[i : end + 1], environ))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes a reference opened before ``start``, counting nested ones.

    Raises ``InterpolationError`` beyond ``MAX_NESTING`` levels, before anything recurses.
    """
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$${", i):
            i += 3
            continue
        if text.startswith("${", i):
            depth += 1
            if depth > MAX_NESTING:
                raise InterpolationError(text[start - 2 :], f"references nested more than {MAX_NESTING} deep")
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _resolve(reference: str, environ: Mapping[str, str]) -> str:
    body = reference[2:-1]
    name_match = _NAME.match(body)
    if name_match is None:
        raise InterpolationError(reference, f"invalid reference: {_FORMS_HINT}")
    name = name_match.group(0)
    rest = body[name_match.end() :]
    value = environ.get(name)
    if not rest:
        if value is None:
            raise InterpolationError(reference, f"{name} is not set")
        return value
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(reference, f"invalid reference: {_FORMS_HINT}")
    argument = rest[len(operator) :]
    missing = value is None or (operator.startswith(":") and value == "")
    if not missing:
        assert value is not None
        return value
    if operator.endswith("-"):
        return interpolate_string(argument, environ)
    problem = f"{name} is not set" if value is None else f"{name} is empty"
    raise InterpolationError(reference, f"{problem}: {argument}" if argument else problem)
