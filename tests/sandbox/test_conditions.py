from __future__ import annotations

import datetime as dt

import pytest

from psa.sandbox.conditions import (
    BoolOp,
    Comparison,
    ConditionError,
    FieldType,
    matches,
    parse,
)

FIELDS: dict[str, FieldType] = {
    "id": "int",
    "identifier": "string",
    "primaryEmail": "string",
    "officeEmail": "string",
    "inactiveFlag": "bool",
    "timeStart": "datetime",
    "member/identifier": "string",
}
JDOE = {
    "id": 101,
    "identifier": "jdoe",
    "primaryEmail": "John.Doe@demo-msp.example",
    "officeEmail": None,
    "inactiveFlag": False,
    "timeStart": dt.datetime(2026, 5, 1, 14, 0, tzinfo=dt.UTC),
    "member/identifier": "jdoe",
}


def check(text: str, record=JDOE) -> bool:
    return matches(parse(text, FIELDS), record)


def test_equality_on_strings_ignores_case():
    assert parse('identifier="jdoe"', FIELDS) == Comparison("identifier", "=", "jdoe")
    assert check('primaryEmail="john.doe@DEMO-msp.example"')
    assert not check('identifier="asmith"')


def test_and_binds_tighter_than_or():
    tree = parse('id=1 or identifier="jdoe" and inactiveFlag=true', FIELDS)
    assert tree == BoolOp(
        "or",
        (
            Comparison("id", "=", 1),
            BoolOp(
                "and",
                (Comparison("identifier", "=", "jdoe"), Comparison("inactiveFlag", "=", True)),
            ),
        ),
    )
    assert not check('id=1 or identifier="jdoe" and inactiveFlag=true')
    assert check('identifier="jdoe" and inactiveFlag=true or id=101')


def test_parentheses_override_precedence():
    assert check('(id=1 or identifier="jdoe") and inactiveFlag=false')
    assert not check('(id=1 or identifier="jdoe") and inactiveFlag=true')
    assert check('((identifier="jdoe"))')


def test_the_client_e_mail_query():
    text = '(primaryEmail="john.doe@demo-msp.example" or officeEmail="john.doe@demo-msp.example")'
    assert check(text + " and inactiveFlag=false")
    assert not check(text + " and inactiveFlag=true")


def test_keywords_and_field_names_are_case_insensitive():
    assert check('IDENTIFIER="jdoe" AND InactiveFlag=FALSE')
    assert parse("Id=1", FIELDS) == Comparison("id", "=", 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('primaryEmail like "john%"', True),
        ('primaryEmail like "%@demo-msp.example"', True),
        ('primaryEmail like "j%d%e@%"', True),
        ('primaryEmail like "john"', False),  # like matches the whole value
        ('primaryEmail like "%.org"', False),
        ('primaryEmail contains "DOE@"', True),
        ('primaryEmail contains "smith"', False),
        ('identifier != "asmith"', True),
        ("id >= 101", True),
        ("id < 101", False),
        ("timeStart >= [2026-05-01T14:00:00Z]", True),
        ("timeStart > [2026-05-01T14:00:00Z]", False),
        ('member/identifier="JDOE"', True),
        ('officeEmail="x"', False),  # null matches nothing...
        ('officeEmail!="x"', False),  # ...not even !=, as in SQL
    ],
)
def test_operators(text, expected):
    assert check(text) is expected


def test_like_treats_regex_characters_literally():
    record = {"identifier": "a.b(c)"}
    assert check('identifier like "a.b(c%"', record)
    assert not check('identifier like "a_b(c%"', record)


def test_escaped_quote_inside_a_string():
    assert parse(r'identifier="say \"hi\""', FIELDS) == Comparison("identifier", "=", 'say "hi"')


def test_blank_conditions_match_everything():
    assert parse("", FIELDS) is None
    assert parse("   ", FIELDS) is None
    assert matches(None, JDOE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('email="a@b.c"', "Unknown field 'email'"),
        ('identifier="jdoe', "Unterminated string"),
        ("identifier=", "Unexpected end"),
        ('identifier "jdoe"', "Expected an operator"),
        ('(identifier="jdoe"', "expected ')'"),
        ('identifier="jdoe")', "Unexpected ')'"),
        ('identifier="jdoe" id=1', "Unexpected 'id'"),
        ('identifier="jdoe" and', "Unexpected end"),
        ("()", "Expected a field name"),
        ("id like 1", "cannot be used with id (of type int)"),
        ('inactiveFlag="false"', "inactiveFlag is of type bool"),
        ("identifier=jdoe", "identifier is of type string"),
        ('id="101"', "id is of type int"),
        ("timeStart > [yesterday]", "Invalid date"),
        ("timeStart > [2026-05-01", "Unterminated [date]"),
        ("id = 12abc", "Unexpected character"),
        ('identifier="x" & id=1', "Unexpected character '&'"),
    ],
)
def test_errors_explain_what_is_wrong(text, message):
    with pytest.raises(ConditionError) as info:
        parse(text, FIELDS)
    assert message.lower() in str(info.value).lower()
