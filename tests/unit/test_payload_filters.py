"""Payload filters (domain.filters): the language, its type rules (docs/payload-filters.md),
validation with JSON paths, and the size bounds."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hookpost.domain.errors import InvalidInput
from hookpost.domain.filters import (
    Payload,
    compile_filter,
    compiled,
    payload_matches,
    stored_filter,
    validate_filter,
)
from hookpost.domain.limits import MAX_PAYLOAD_FILTER_DEPTH, MAX_PAYLOAD_FILTER_NODES
from hookpost.domain.matching import filters_match

EXAMPLE = {
    "amount": {"$gte": 1000},
    "currency": {"$in": ["EUR", "USD"]},
    "$or": [{"customer.tier": "gold"}, {"flagged": True}],
}

# (filter, payload, matches)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # the example
    (EXAMPLE, {"amount": 1000, "currency": "EUR", "customer": {"tier": "gold"}}, True),
    (EXAMPLE, {"amount": 5000.5, "currency": "USD", "flagged": True}, True),
    (EXAMPLE, {"amount": 1000, "currency": "EUR", "customer": {"tier": "silver"}}, False),
    (EXAMPLE, {"amount": 999, "currency": "EUR", "flagged": True}, False),
    (EXAMPLE, {"amount": 1000, "currency": "GBP", "flagged": True}, False),
    (EXAMPLE, {"currency": "EUR", "flagged": True}, False),  # amount missing
    (EXAMPLE, {"amount": "1000", "currency": "EUR", "flagged": True}, False),  # a string
    (EXAMPLE, {"amount": 1000, "currency": "EUR", "flagged": 1}, False),  # 1 is not true
    # plain values: type-strict equality
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1.0}, {"a": 1}, True),
    ({"a": 1}, {"a": "1"}, False),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": 0}, {"a": False}, False),
    ({"a": False}, {"a": False}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {}, False),  # missing is not null
    ({"a": None}, {"a": 0}, False),
    ({"a": "x"}, {"a": "x"}, True),
    ({"a": "x"}, {"a": "X"}, False),
    ({"a": [1, "b"]}, {"a": [1.0, "b"]}, True),
    ({"a": [1, "b"]}, {"a": ["b", 1]}, False),
    ({"a": [1]}, {"a": 1}, False),  # no implicit array membership: $contains
    ({"a": [True]}, {"a": [1]}, False),
    ({"a": {"$eq": {"k": 1}}}, {"a": {"k": 1.0}}, True),
    ({"a": {"$eq": {"k": 1}}}, {"a": {"k": 1, "l": 2}}, False),
    ({"a": {"$eq": {}}}, {"a": {}}, True),
    # nesting and dotted keys
    ({"customer": {"tier": "gold"}}, {"customer": {"tier": "gold"}}, True),
    ({"customer.tier": "gold"}, {"customer": {"tier": "gold"}}, True),
    ({"customer.tier": "gold"}, {"customer.tier": "gold"}, False),  # a dot always descends
    ({"customer.tier": "gold"}, {"customer": "gold"}, False),
    ({"customer.tier": "gold"}, {"customer": [{"tier": "gold"}]}, False),  # no array descent
    ({"a": {"b.c": {"d": 1}}}, {"a": {"b": {"c": {"d": 1}}}}, True),
    ({"customer": {"$exists": True, "tier": "gold"}}, {"customer": {"tier": "gold"}}, True),
    ({"customer": {"$exists": True, "tier": "gold"}}, {"customer": {"tier": "x"}}, False),
    # $eq / $neq
    ({"a": {"$eq": 2}}, {"a": 2}, True),
    ({"a": {"$eq": 2}}, {}, False),
    ({"a": {"$neq": 2}}, {"a": 3}, True),
    ({"a": {"$neq": 2}}, {"a": 2.0}, False),
    ({"a": {"$neq": 2}}, {"a": "2"}, True),
    ({"a": {"$neq": 2}}, {}, True),  # missing: $neq matches
    ({"a": {"$neq": None}}, {"a": None}, False),
    # ordering: numbers with numbers, strings with strings, else false
    ({"a": {"$gt": 1}}, {"a": 2}, True),
    ({"a": {"$gt": 1}}, {"a": 1}, False),
    ({"a": {"$gte": 1}}, {"a": 1.0}, True),
    ({"a": {"$lt": 1}}, {"a": 0.5}, True),
    ({"a": {"$lte": 1}}, {"a": 1}, True),
    ({"a": {"$lte": 1}}, {"a": 1.5}, False),
    ({"a": {"$gt": 1}}, {"a": "2"}, False),
    ({"a": {"$lt": "b"}}, {"a": 1}, False),
    ({"a": {"$gt": 0}}, {"a": True}, False),  # bool is not a number
    ({"a": {"$gt": 0}}, {"a": None}, False),
    ({"a": {"$gt": 0}}, {"a": [1]}, False),
    ({"a": {"$gt": 0}}, {"a": {"b": 1}}, False),
    ({"a": {"$gt": 0}}, {}, False),
    ({"a": {"$lt": 0}}, {}, False),
    ({"a": {"$gt": "apple"}}, {"a": "banana"}, True),
    ({"a": {"$gt": "b"}}, {"a": "B"}, False),  # code points: "B" < "b"
    ({"a": {"$lt": "é"}}, {"a": "z"}, True),
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": 2}, True),
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": 3}, False),
    # $in / $nin
    ({"a": {"$in": [1, "x"]}}, {"a": 1.0}, True),
    ({"a": {"$in": [1, "x"]}}, {"a": "x"}, True),
    ({"a": {"$in": [1, "x"]}}, {"a": True}, False),
    ({"a": {"$in": [1, "x"]}}, {"a": "1"}, False),
    ({"a": {"$in": [[1, 2]]}}, {"a": [1, 2]}, True),
    ({"a": {"$in": [None]}}, {"a": None}, True),
    ({"a": {"$in": [None]}}, {}, False),
    ({"a": {"$in": []}}, {"a": 1}, False),
    ({"a": {"$nin": [1, 2]}}, {"a": 3}, True),
    ({"a": {"$nin": [1, 2]}}, {"a": 2.0}, False),
    ({"a": {"$nin": [1, 2]}}, {"a": "1"}, True),
    ({"a": {"$nin": [1, 2]}}, {}, False),  # missing: only $neq and $exists: false match
    ({"a": {"$nin": []}}, {"a": 1}, True),
    # $contains: substring of a string, member of an array
    ({"a": {"$contains": "ell"}}, {"a": "hello"}, True),
    ({"a": {"$contains": "xyz"}}, {"a": "hello"}, False),
    ({"a": {"$contains": ""}}, {"a": "hello"}, True),
    ({"a": {"$contains": 1}}, {"a": "a1"}, False),
    ({"a": {"$contains": "b"}}, {"a": ["a", "b"]}, True),
    ({"a": {"$contains": "b"}}, {"a": ["abc"]}, False),
    ({"a": {"$contains": 1}}, {"a": [1.0, 2]}, True),
    ({"a": {"$contains": 1}}, {"a": [True]}, False),
    ({"a": {"$contains": {"k": 1}}}, {"a": [{"k": 1}]}, True),
    ({"a": {"$contains": 1}}, {"a": 1}, False),  # a number contains nothing
    ({"a": {"$contains": "k"}}, {"a": {"k": 1}}, False),  # nor does an object
    ({"a": {"$contains": "x"}}, {"a": None}, False),
    ({"a": {"$contains": "x"}}, {}, False),
    # $exists
    ({"a": {"$exists": True}}, {"a": None}, True),
    ({"a": {"$exists": True}}, {}, False),
    ({"a": {"$exists": False}}, {}, True),
    ({"a": {"$exists": False}}, {"a": False}, False),
    ({"a.b": {"$exists": False}}, {"a": 1}, True),
    ({"a.b": {"$exists": True}}, {"a": {"b": 0}}, True),
    # $and / $or / $not
    ({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 2}, True),
    ({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 3}, False),
    ({"$or": [{"a": 1}, {"b": 2}]}, {"a": 0, "b": 2}, True),
    ({"$or": [{"a": 1}, {"b": 2}]}, {}, False),
    ({"$not": {"a": 1}}, {"a": 2}, True),
    ({"$not": {"a": 1}}, {"a": 1}, False),
    ({"$not": {"a": {"$gt": 5}}}, {}, True),  # negation of a failed test, missing or not
    ({"$not": {"$or": [{"a": 1}, {"a": 2}]}}, {"a": 3}, True),
    ({"$not": {"$or": [{"a": 1}, {"a": 2}]}}, {"a": 2}, False),
    ({"status": {"$not": {"$in": ["void", "draft"]}}}, {"status": "paid"}, True),
    ({"status": {"$not": {"$in": ["void", "draft"]}}}, {"status": "void"}, False),
    ({"customer": {"$or": [{"tier": "gold"}, {"vip": True}]}}, {"customer": {"vip": True}}, True),
    ({"customer": {"$or": [{"tier": "gold"}, {"vip": True}]}}, {"vip": True}, False),
    ({"a": 1, "$and": [{"b": 2}], "$or": [{"c": 3}, {"d": 4}]}, {"a": 1, "b": 2, "d": 4}, True),
]


@pytest.mark.parametrize(("flt", "payload", "expected"), CASES)
def test_matching_table(flt: dict[str, Any], payload: dict[str, Any], expected: bool) -> None:
    assert compile_filter(flt)(payload) is expected
    # the stores' path: the stored text, compiled once, against the payload's bytes
    assert payload_matches(stored_filter(flt), Payload(orjson.dumps(payload))) is expected


# (filter, the JSON path under payloadFilter the 422 names, a word of its message)
INVALID: list[tuple[Any, tuple[str | int, ...], str]] = [
    ({"a": {"$foo": 1}}, ("a", "$foo"), "unknown operator"),
    ({"$or": [{"a": 1}, {"amount": {"$gt": [1]}}]}, ("$or", 1, "amount", "$gt"), "list"),
    ({"a": {"$gt": {"x": 1}}}, ("a", "$gt"), "object"),
    ({"a": {"$gt": True}}, ("a", "$gt"), "boolean"),
    ({"a": {"$lte": None}}, ("a", "$lte"), "null"),
    ({"a": {"$in": "EUR"}}, ("a", "$in"), "list"),
    ({"a": {"$nin": {"x": 1}}}, ("a", "$nin"), "list"),
    ({"a": {"$exists": 1}}, ("a", "$exists"), "true or false"),
    ({"$and": {"a": 1}}, ("$and",), "list"),
    ({"$or": []}, ("$or",), "list"),
    ({"$or": [{"a": 1}, 2]}, ("$or", 1), "filter object"),
    ({"$and": [{}]}, ("$and", 0), "filter object"),
    ({"$not": [{"a": 1}]}, ("$not",), "one filter object"),
    ({"$not": {}}, ("$not",), "one filter object"),
    ({"$gt": 1}, ("$gt",), "applies to a field"),
    ({"$exists": True}, ("$exists",), "applies to a field"),
    ({"a": {}}, ("a",), "empty object"),
    ({"a..b": 1}, ("a..b",), "empty"),
    ({"": 1}, ("",), "empty"),
    ({"a": {"b c": {"$gt": []}}}, ("a", "b c", "$gt"), "list"),
    ({"x": {"$or": [{"y": {"$in": 3}}]}}, ("x", "$or", 0, "y", "$in"), "list"),
    ({"customer.tier": {"$gt": [1]}}, ("customer.tier", "$gt"), "list"),
    ([{"a": 1}], (), "object"),
]


@pytest.mark.parametrize(("flt", "path", "word"), INVALID)
def test_invalid_filters_name_the_bad_part(
    flt: Any, path: tuple[str | int, ...], word: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        compile_filter(flt)
    assert (err.value.field, err.value.path) == ("payloadFilter", path)
    assert word in err.value.message


def test_size_and_depth_are_bounded() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(MAX_PAYLOAD_FILTER_DEPTH):
        deep = {"$not": deep}
    with pytest.raises(InvalidInput, match="levels deep"):
        compile_filter(deep)
    wide = {"a": {"$in": list(range(MAX_PAYLOAD_FILTER_NODES))}}
    with pytest.raises(InvalidInput, match="at most"):
        compile_filter(wide)
    big = {"a": {"$in": ["x" * 5000, "y" * 5000]}}
    with pytest.raises(InvalidInput, match="bytes"):
        compile_filter(big)
    # within the bounds: fine
    compile_filter({"a": {"$in": list(range(MAX_PAYLOAD_FILTER_NODES // 2))}})


def test_empty_filter_is_no_filter() -> None:
    assert validate_filter(None) is None
    assert validate_filter({}) is None
    assert validate_filter({"a": 1}) == {"a": 1}
    with pytest.raises(InvalidInput):
        validate_filter({"a": {"$bad": 1}})


def test_compiled_once_per_stored_text() -> None:
    text = stored_filter({"n": {"$gt": 41}})
    assert text is not None
    assert compiled(text) is compiled(text)
    assert compiled('{"n":{"$bogus":1}}')({"n": 1}) is False  # no longer valid: matches nothing


def test_payload_is_parsed_once_and_bad_json_matches_nothing() -> None:
    payload = Payload(b'{"a": 1}')
    assert payload.doc is payload.doc
    assert not payload_matches('{"a":{"$exists":false}}', Payload(b"not json"))


def test_filters_match_combines_types_channels_and_payload() -> None:
    flt = stored_filter({"amount": {"$gt": 10}})
    big, small = Payload(b'{"amount": 11}'), Payload(b'{"amount": 10}')
    assert filters_match(["invoice.*"], ["eu"], "invoice.paid", ["eu"], flt, big)
    assert not filters_match(["invoice.*"], ["eu"], "invoice.paid", ["eu"], flt, small)
    assert not filters_match(["user.*"], None, "invoice.paid", None, flt, big)
    assert not filters_match(None, ["us"], "invoice.paid", ["eu"], flt, big)
    assert filters_match(["*"], None, "x", None, None, None)
    assert not filters_match(None, None, "x", None, flt, None)  # a filter needs the payload


_VALUES: list[Any] = [
    0,
    1,
    1.0,
    2.5,
    -3,
    True,
    False,
    None,
    "",
    "1",
    "a",
    "b",
    "é",
    [],
    [1],
    {},
    {"k": 1},
]


def _reference(op: str, present: bool, v: Any, operand: Any) -> bool:
    """The rules of docs/payload-filters.md, written out plainly."""

    def num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def eq(a: Any, b: Any) -> bool:
        if num(a) or num(b):
            return num(a) and num(b) and a == b
        if type(a) is not type(b):
            return False
        if isinstance(a, list):
            return len(a) == len(b) and all(eq(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)
        return bool(a == b)

    if op == "$neq":
        return not present or not eq(v, operand)
    if not present:
        return False
    if op == "$eq":
        return eq(v, operand)
    if op == "$in":
        return any(eq(v, x) for x in operand)
    if op == "$nin":
        return not any(eq(v, x) for x in operand)
    same = (num(v) and num(operand)) or (type(v) is str and type(operand) is str)
    return (
        same
        and {"$gt": v > operand, "$gte": v >= operand, "$lt": v < operand, "$lte": v <= operand}[op]
        if same
        else False
    )


@pytest.mark.parametrize("op", ["$eq", "$neq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"])
def test_every_operand_shape_follows_the_written_rules(op: str) -> None:
    """The compiled closures specialise on the operand's type (numbers, strings, sets of
    scalars): each must answer as the plain rule, for every pair of JSON types."""
    if op in ("$in", "$nin"):
        operands: list[Any] = [[x] for x in _VALUES] + [[1, "a", None], [[1], 2.5], []]
    elif op in ("$eq", "$neq"):
        operands = _VALUES
    else:
        operands = [x for x in _VALUES if isinstance(x, (int, float, str)) and type(x) is not bool]
    for operand in operands:
        pred = compile_filter({"f": {op: operand}})
        for v in _VALUES:
            assert pred({"f": v}) is _reference(op, True, v, operand), (op, operand, v)
        assert pred({}) is _reference(op, False, None, operand), (op, operand)
