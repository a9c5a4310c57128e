"""The ConnectWise ``conditions`` query grammar: a small parser and evaluator, pure Python.

ConnectWise filters list endpoints with a SQL-like ``conditions`` parameter, e.g.
``(primaryEmail="a@b.c" or officeEmail="a@b.c") and inactiveFlag=false``. The sandbox parses it
into a tiny tree and evaluates it against plain dicts (one per record, keyed by the API field
names), so it needs no database and is unit-tested on its own.

Grammar (keywords and field names case-insensitive)::

    expression := term ("or" term)*              -- "and" binds tighter than "or"
    term       := factor ("and" factor)*
    factor     := "(" expression ")" | comparison
    comparison := FIELD OP VALUE
    OP         := "=" | "!=" | "<" | "<=" | ">" | ">=" | "like" | "contains"
    VALUE      := "quoted string" | true | false | integer | [2026-05-01T14:00:00Z]

Semantics, as ConnectWise's SQL Server backend behaves:
- strings compare case-insensitively; ``like`` takes ``%`` as "any characters" (the whole value
  must match); ``contains`` is a substring test; ``\\"`` escapes a quote inside a string;
- a missing (null) value matches no comparison, not even ``!=``;
- each field has a type; a value of the wrong type, an operator that does not apply to it
  (``like`` on a number) or an unknown field is a ``ConditionError`` with a message that says
  what is wrong and where, which the views turn into HTTP 400.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["string", "int", "bool", "datetime"]

ORDERING_OPS = ("<", "<=", ">", ">=")
OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("=", "!=", "like", "contains", *ORDERING_OPS),
    "int": ("=", "!=", *ORDERING_OPS),
    "datetime": ("=", "!=", *ORDERING_OPS),
    "bool": ("=", "!="),
}
WORD_OPS = ("like", "contains")


class ConditionError(ValueError):
    """The conditions text cannot be parsed or refers to something that does not exist."""


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    operands: tuple[Node, ...]


Node = Comparison | BoolOp


# --- tokens ---------------------------------------------------------------------------------
_TOKEN_RE = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<datetime>\[[^\]]*\])
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<paren>[()])
  | (?P<number>-?\d+)(?![\w/.])
  | (?P<word>[A-Za-z_][\w/.]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            if text[pos] == '"':
                raise ConditionError(f"Unterminated string starting at position {pos + 1}.")
            if text[pos] == "[":
                raise ConditionError(f"Unterminated [date] starting at position {pos + 1}.")
            raise ConditionError(f"Unexpected character {text[pos]!r} at position {pos + 1}.")
        kind = match.lastgroup or ""
        tokens.append(_Token(kind, match.group(kind), pos + 1))
        pos = match.end()
    return tokens


# --- parser ---------------------------------------------------------------------------------
class _Parser:
    def __init__(self, text: str, fields: Mapping[str, FieldType]) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        # Field names are matched case-insensitively; the tree carries the canonical spelling.
        self.fields = {name.lower(): (name, kind) for name, kind in fields.items()}

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            raise ConditionError(f"Unexpected end of conditions: expected {expected}.")
        self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.lower() == word

    def parse(self) -> Node:
        node = self.expression()
        token = self.peek()
        if token is not None:
            raise ConditionError(
                f"Unexpected {token.text!r} at position {token.pos}: expected 'and', 'or' or "
                "the end of the conditions."
            )
        return node

    def expression(self) -> Node:
        operands = [self.term()]
        while self.at_keyword("or"):
            self.index += 1
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def term(self) -> Node:
        operands = [self.factor()]
        while self.at_keyword("and"):
            self.index += 1
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def factor(self) -> Node:
        token = self.peek()
        if token is not None and token.kind == "paren" and token.text == "(":
            self.index += 1
            node = self.expression()
            closing = self.next("')'")
            if closing.text != ")":
                raise ConditionError(
                    f"Expected ')' at position {closing.pos}, found {closing.text!r}."
                )
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        token = self.next("a field name")
        if token.kind != "word" or token.text.lower() in ("and", "or", *WORD_OPS):
            raise ConditionError(
                f"Expected a field name at position {token.pos}, found {token.text!r}."
            )
        known = self.fields.get(token.text.lower())
        if known is None:
            names = ", ".join(sorted(name for name, _ in self.fields.values()))
            raise ConditionError(f"Unknown field {token.text!r}; known fields: {names}.")
        field, kind = known

        op_token = self.next(f"an operator after {field}")
        op = op_token.text.lower()
        if not (op_token.kind == "op" or (op_token.kind == "word" and op in WORD_OPS)):
            raise ConditionError(
                f"Expected an operator (=, !=, <, <=, >, >=, like, contains) at position "
                f"{op_token.pos}, found {op_token.text!r}."
            )
        if op not in OPS_BY_TYPE[kind]:
            raise ConditionError(f"Operator {op!r} cannot be used with {field} (of type {kind}).")

        value_token = self.next(f"a value after {field} {op}")
        return Comparison(field, op, _value(value_token, field, kind))


def _value(token: _Token, field: str, kind: FieldType) -> Any:
    if kind == "string" and token.kind == "string":
        return re.sub(r"\\(.)", r"\1", token.text[1:-1])
    if kind == "int" and token.kind == "number":
        return int(token.text)
    if kind == "bool" and token.kind == "word" and token.text.lower() in ("true", "false"):
        return token.text.lower() == "true"
    if kind == "datetime" and token.kind == "datetime":
        raw = token.text[1:-1].strip()
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise ConditionError(f"Invalid date [{raw}] at position {token.pos}.") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    examples = {"string": '"text"', "int": "123", "bool": "true or false", "datetime": "[...]"}
    raise ConditionError(
        f"Invalid value {token.text!r} for {field} at position {token.pos}: "
        f"{field} is of type {kind}, write the value as {examples[kind]}."
    )


def parse(text: str, fields: Mapping[str, FieldType]) -> Node | None:
    """Parse ``text`` against the given field types; ``None`` when it is blank (match all)."""
    if not text or not text.strip():
        return None
    return _Parser(text, fields).parse()


# --- evaluation -----------------------------------------------------------------------------
def _like(value: str, pattern: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("%"))
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if actual is None:
        return False  # SQL: NULL compared with anything is unknown, so not a match
    if isinstance(expected, str):
        actual, expected = str(actual).casefold(), expected.casefold()
        if op == "like":
            return _like(actual, expected)
        if op == "contains":
            return expected in actual
    if op == "=":
        return bool(actual == expected)
    if op == "!=":
        return bool(actual != expected)
    if op == "<":
        return bool(actual < expected)
    if op == "<=":
        return bool(actual <= expected)
    if op == ">":
        return bool(actual > expected)
    return bool(actual >= expected)  # ">="; the parser admits no other operator


def matches(node: Node | None, record: Mapping[str, Any]) -> bool:
    """True when ``record`` (API field name → value) satisfies the parsed conditions."""
    if node is None:
        return True
    if isinstance(node, Comparison):
        return _compare(record.get(node.field), node.op, node.value)
    results = (matches(operand, record) for operand in node.operands)
    return all(results) if node.op == "and" else any(results)
