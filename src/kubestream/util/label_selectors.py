"""Kubernetes label selectors: the grammar, values and error messages of apimachinery's
``pkg/labels/selector.go`` ``Parse``, shared by the agent (``logs.label_selector``) and the
simulated API server (``labelSelector``).

``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key``,
``!key``, ``key>1`` and ``key<1``, separated by commas; whitespace between tokens is ignored.
Keys are qualified names (an optional DNS-subdomain prefix and ``/``, then at most 63
characters), values are at most 63 characters of ``[-A-Za-z0-9_.]`` starting and ending
alphanumerically (or empty). Errors raise ``LabelSelectorError`` with the message the API server
puts in its 400 Status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


class LabelSelectorError(ValueError):
    """A selector that does not parse; ``term_start`` is the offset of the term that failed."""

    def __init__(self, message: str, term_start: int) -> None:
        super().__init__(message)
        self.message = message
        self.term_start = term_start


_SPECIAL = "=!(),<>"
_KEYWORDS = {"in", "notin"}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement: key, operator (=, !=, in, notin, exists, !, gt, lt) and values."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this requirement."""
        has = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if not has:
            return False
        try:
            number = int(str(value))
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


def _tokens(text: str) -> list[tuple[str, int]]:
    """The lexer of ``selector.go``: identifiers, operators and punctuation, with their offsets."""
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SPECIAL:
            two = text[i:i + 2]
            if two in ("==", "!="):
                out.append((two, i))
                i += 2
            else:
                out.append((ch, i))
                i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            out.append((text[i:j], i))
            i = j
    return out


def _is_ident(tok: str | None) -> bool:
    return tok is not None and tok not in _SPECIAL and tok not in ("==", "!=")


class _LabelParser:
    def __init__(self, text: str) -> None:
        tokens = _tokens(text)
        self.toks = [tok for tok, _ in tokens]
        self.offsets = [offset for _, offset in tokens]
        self.pos = 0
        self.term_start = 0

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def error(self, message: str) -> LabelSelectorError:
        return LabelSelectorError(message, self.term_start)

    def fail(self, found: str | None, expected: str) -> LabelSelectorError:
        shown = "EOS" if found is None else found
        return self.error(f"unable to parse requirement: found '{shown}', expected: {expected}")

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while self.peek() is not None:
            reqs.append(self.requirement())
            tok = self.take()
            if tok is None:
                break
            if tok != ",":
                raise self.fail(tok, "',' or 'end of string'")
            self.term_start = self.offsets[self.pos - 1] + 1
            if self.peek() is None:
                raise self.fail(None, "identifier")
        return reqs

    def requirement(self) -> Requirement:
        tok = self.take()
        if tok == "!":
            key = self.take()
            if not _is_ident(key) or key in _KEYWORDS:
                raise self.fail(key, "identifier")
            return Requirement(self.valid_key(str(key)), "!")
        if not _is_ident(tok):
            raise self.fail(tok, "! or identifier")
        key = self.valid_key(str(tok))
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.pos += 1
        if op in ("=", "==", "!="):
            value = self.peek()
            if value is None or value == ",":
                return Requirement(key, "=" if op != "!=" else "!=", ("",))
            if not _is_ident(value):
                raise self.fail(value, "identifier")
            self.pos += 1
            return Requirement(key, "!=" if op == "!=" else "=", (self.valid_value(value),))
        if op in ("in", "notin"):
            return Requirement(key, op, self.value_set())
        if op in (">", "<"):
            value = self.take()
            if not _is_ident(value) or not str(value).lstrip("-").isdigit():
                raise self.error("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer")
            return Requirement(key, "gt" if op == ">" else "lt", (str(value),))
        raise self.fail(op, "'=', '!=', '==', 'in', notin'")

    def value_set(self) -> tuple[str, ...]:
        tok = self.take()
        if tok != "(":
            raise self.fail(tok, "'('")
        values: list[str] = []
        while True:
            tok = self.take()
            if tok == ")" and not values:
                return ("",)
            if _is_ident(tok):
                values.append(self.valid_value(str(tok)))
                tok = self.take()
            else:
                values.append("")
            if tok == ")":
                return tuple(values)
            if tok != ",":
                raise self.fail(tok, "',' or ')'")

    def valid_key(self, key: str) -> str:
        if not _LABEL_NAME.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            raise self.error(
                f'unable to parse requirement: <nil>: Invalid value: "{key}": name part must consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            )
        return key

    def valid_value(self, value: str) -> str:
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise self.error(
                f'unable to parse requirement: values[0][value]: Invalid value: "{value}": a valid label must be an '
                "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                "an alphanumeric character"
            )
        return value


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector; ``LabelSelectorError`` on bad syntax. Empty → matches everything."""
    if not text or not text.strip():
        return []
    return _LabelParser(text).parse()


def labels_match(reqs: list[Requirement], labels: Mapping[str, str]) -> bool:
    """Whether a label set satisfies every requirement (no requirements: everything matches)."""
    return all(r.matches(labels) for r in reqs)
