"""The shared label-selector parser: apimachinery's grammar, semantics and error messages."""

from __future__ import annotations

import pytest

from kubestream.util.label_selectors import (
    LabelSelectorError,
    Requirement,
    labels_match,
    parse_label_selector,
)


def test_every_operator() -> None:
    reqs = parse_label_selector("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g,h>4,i<5")
    assert reqs == [Requirement("a", "=", ("1",)), Requirement("b", "=", ("2",)), Requirement("c", "!=", ("3",)),
                    Requirement("d", "in", ("x", "y")), Requirement("e", "notin", ("z",)),
                    Requirement("f", "exists"), Requirement("g", "!"), Requirement("h", "gt", ("4",)),
                    Requirement("i", "lt", ("5",))]


def test_whitespace_between_tokens_is_ignored() -> None:
    assert parse_label_selector("  app =  web ,  ! legacy , env  in  ( a ,b )  ") == [
        Requirement("app", "=", ("web",)), Requirement("legacy", "!"), Requirement("env", "in", ("a", "b"))]


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_selects_everything(text: str | None) -> None:
    assert parse_label_selector(text) == []
    assert labels_match([], {})


def test_empty_values() -> None:
    assert parse_label_selector("a=") == [Requirement("a", "=", ("",))]
    assert parse_label_selector("a in ()") == [Requirement("a", "in", ("",))]
    assert parse_label_selector("a in (,b)") == [Requirement("a", "in", ("", "b"))]


def test_qualified_keys() -> None:
    assert parse_label_selector("app.kubernetes.io/name=web")[0].key == "app.kubernetes.io/name"


@pytest.mark.parametrize(("labels", "selector", "expected"), [
    ({"a": "1"}, "a=1", True),
    ({"a": "2"}, "a=1", False),
    ({}, "a=1", False),
    ({}, "a!=1", True),  # != and notin also match when the key is absent
    ({}, "a notin (1)", True),
    ({"a": "1"}, "a notin (1,2)", False),
    ({"a": "x"}, "a in (x,y)", True),
    ({}, "a in (x,y)", False),
    ({"a": ""}, "a", True),
    ({}, "a", False),
    ({"a": "1"}, "!a", False),
    ({}, "!a", True),
    ({"a": "5"}, "a>4", True),
    ({"a": "4"}, "a>4", False),
    ({"a": "x"}, "a>4", False),  # not an integer
    ({}, "a<4", False),
    ({"a": "1", "b": "2"}, "a=1,b=2", True),
    ({"a": "1"}, "a=1,b=2", False),
])
def test_semantics(labels: dict[str, str], selector: str, expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is expected


NAME_PART = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
             "with an alphanumeric character")
VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
         "must start and end with an alphanumeric character")


@pytest.mark.parametrize(("text", "message"), [
    ("app in prod", "unable to parse requirement: found 'prod', expected: '('"),
    ("app in (a", "unable to parse requirement: found 'EOS', expected: ',' or ')'"),
    ("a=b,", "unable to parse requirement: found 'EOS', expected: identifier"),
    ("a=b c", "unable to parse requirement: found 'c', expected: ',' or 'end of string'"),
    ("=a", "unable to parse requirement: found '=', expected: ! or identifier"),
    ("!in", "unable to parse requirement: found 'in', expected: identifier"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("a>x", "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"),
    ("a b", "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'"),
    ("-a=1", f'unable to parse requirement: <nil>: Invalid value: "-a": {NAME_PART}'),
    (f"{'k' * 64}=1", f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": {NAME_PART}'),
    ("a=-x", f'unable to parse requirement: values[0][value]: Invalid value: "-x": {VALUE}'),
    (f"a={'v' * 64}", f'unable to parse requirement: values[0][value]: Invalid value: "{"v" * 64}": {VALUE}'),
    ("a in (ok,b_)", f'unable to parse requirement: values[0][value]: Invalid value: "b_": {VALUE}'),
])
def test_errors_carry_the_api_servers_message(text: str, message: str) -> None:
    with pytest.raises(LabelSelectorError) as caught:
        parse_label_selector(text)
    assert caught.value.message == message == str(caught.value)


def test_errors_point_at_the_failing_term() -> None:
    text = "a=b, c in x"
    with pytest.raises(LabelSelectorError) as caught:
        parse_label_selector(text)
    assert text[caught.value.term_start:] == " c in x"
    with pytest.raises(LabelSelectorError) as caught:
        parse_label_selector("app in (a")
    assert caught.value.term_start == 0
