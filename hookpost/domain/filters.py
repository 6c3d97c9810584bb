"""Payload filters: an endpoint's ``payloadFilter``, validated and compiled into a predicate.

The language and its type rules are documented in docs/payload-filters.md; the choices in
docs/decisions/0024-payload-filters.md. Pure: no I/O. A filter is compiled once into nested
closures (``compile_filter``); the stores look compiled filters up by their stored JSON text
(``compiled``), so each endpoint's filter is compiled once per process, not per message.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

import orjson

from hookpost.domain.errors import InvalidInput
from hookpost.domain.limits import (
    MAX_PAYLOAD_FILTER_BYTES,
    MAX_PAYLOAD_FILTER_DEPTH,
    MAX_PAYLOAD_FILTER_NODES,
)

FIELD = "payloadFilter"  # the API field: errors name paths below it

Predicate = Callable[[Any], bool]  # the parsed payload -> does it match


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()  # a path that leads nowhere in the payload


def _true(_: Any) -> bool:
    return True


# --------------------------------------------------------------------------- type rules


def _is_number(v: Any) -> bool:
    # bool is a subclass of int in Python, but true is not 1 in a filter.
    return (type(v) is int) or (type(v) is float)


def json_equal(a: Any, b: Any) -> bool:
    """Type-strict JSON equality: numbers equal numbers by value (1 == 1.0), and nothing
    equals a value of another JSON type (1 != "1", true != 1, null == null only); arrays and
    objects compare element by element with the same rule."""
    if _is_number(a):
        return _is_number(b) and a == b
    ta = type(a)
    if ta is not type(b):
        return False
    if ta is list:
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    return bool(a == b)  # str, bool, None


def _ordered(op: str, a: Any, b: Any) -> bool:
    """``a op b`` for two numbers or two strings (by code point); false across types."""
    if _is_number(a):
        if not _is_number(b):
            return False
    elif type(a) is not str or type(b) is not str:
        return False
    if op == "$gt":
        return bool(a > b)
    if op == "$gte":
        return bool(a >= b)
    if op == "$lt":
        return bool(a < b)
    return bool(a <= b)


def _contains(field: Any, operand: Any) -> bool:
    """Substring of a string (the operand a string), or member of an array (type-strict)."""
    if type(field) is str:
        return type(operand) is str and operand in field
    if type(field) is list:
        return any(json_equal(item, operand) for item in field)
    return False


# --------------------------------------------------------------------------- paths


def _bad(path: tuple[str | int, ...], msg: str) -> InvalidInput:
    """A 422 whose ``loc`` is ``["body", "payloadFilter", *path]``: the filter's JSON path
    (``payloadFilter.$or[1].amount.$gt`` is ``[..., "$or", 1, "amount", "$gt"]``)."""
    return InvalidInput(FIELD, msg, path)


def _lookup(segments: tuple[str, ...]) -> Callable[[Any], Any]:
    """The value at ``segments`` in a payload, or MISSING (a segment absent, or a value on
    the way that is not an object)."""
    if len(segments) == 1:
        (key,) = segments

        def get1(doc: Any) -> Any:
            return doc.get(key, MISSING) if type(doc) is dict else MISSING

        return get1

    def get(doc: Any) -> Any:
        for key in segments:
            if type(doc) is not dict:
                return MISSING
            doc = doc.get(key, MISSING)
            if doc is MISSING:
                return MISSING
        return doc

    return get


# --------------------------------------------------------------------------- compiling


_ORDERING = frozenset({"$gt", "$gte", "$lt", "$lte"})
_VALUE_OPS = frozenset({"$eq", "$neq", "$in", "$nin", "$contains", "$exists"}) | _ORDERING
_LOGIC_OPS = frozenset({"$and", "$or", "$not"})


_ORDER_FUNCS: Final = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_NUMBER_TYPES: Final = (int, float)  # compared with `type(v) in`: bool is not one of them


def _scalar_key(v: Any) -> tuple[str, Any] | None:
    """A hashable key under which two scalars are equal exactly when ``json_equal`` says so
    (numbers by value, whatever their type); None for arrays and objects."""
    if _is_number(v):
        return ("n", v)
    if v is None or type(v) in (str, bool):
        return (type(v).__name__, v)
    return None


def _compare(op: str, operand: Any, get: Callable[[Any], Any]) -> Predicate:
    """One value operator on the field ``get`` reads. A missing field fails every operator
    but ``$neq`` and ``$exists: false``. The common shapes of operand get a closure of their
    own (they run once per endpoint and message), which must answer as the generic rule."""
    if op == "$eq":
        if _is_number(operand):
            return lambda doc: type(v := get(doc)) in _NUMBER_TYPES and v == operand
        if type(operand) is str:
            return lambda doc: type(v := get(doc)) is str and v == operand
        return lambda doc: (v := get(doc)) is not MISSING and json_equal(v, operand)
    if op == "$neq":
        return lambda doc: (v := get(doc)) is MISSING or not json_equal(v, operand)
    if op in _ORDERING:
        cmp = _ORDER_FUNCS[op]
        if _is_number(operand):
            return lambda doc: type(v := get(doc)) in _NUMBER_TYPES and bool(cmp(v, operand))
        return lambda doc: type(v := get(doc)) is str and bool(cmp(v, operand))
    if op in ("$in", "$nin"):
        keys = [_scalar_key(x) for x in operand]
        if all(k is not None for k in keys):  # scalars only: one set lookup
            found = frozenset(keys)
            if op == "$in":
                return lambda doc: _scalar_key(get(doc)) in found
            return lambda doc: (v := get(doc)) is not MISSING and _scalar_key(v) not in found
        if op == "$in":
            return lambda doc: (
                (v := get(doc)) is not MISSING and any(json_equal(v, x) for x in operand)
            )
        return lambda doc: (
            (v := get(doc)) is not MISSING and not any(json_equal(v, x) for x in operand)
        )
    if op == "$contains":
        return lambda doc: _contains(get(doc), operand)
    # $exists
    if operand:
        return lambda doc: get(doc) is not MISSING
    return lambda doc: get(doc) is MISSING


def _check_operand(op: str, operand: Any, path: tuple[str | int, ...]) -> None:
    if op in _ORDERING and not (_is_number(operand) or type(operand) is str):
        raise _bad(path, f"{op} compares with a number or a string, not {_json_type(operand)}")
    if op in ("$in", "$nin") and type(operand) is not list:
        raise _bad(path, f"{op} takes a list of values, not {_json_type(operand)}")
    if op == "$exists" and type(operand) is not bool:
        raise _bad(path, f"$exists takes true or false, not {_json_type(operand)}")


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if type(v) is bool:
        return "a boolean"
    if _is_number(v):
        return "a number"
    if type(v) is str:
        return "a string"
    if type(v) is list:
        return "a list"
    return "an object" if v else "an empty object"


def _all(preds: list[Predicate]) -> Predicate:
    if not preds:
        return _true
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda doc: p(doc) and q(doc)
    ps = tuple(preds)

    def every(doc: Any) -> bool:
        for p in ps:  # a loop: cheaper than all() over a generator
            if not p(doc):
                return False
        return True

    return every


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    ps = tuple(preds)

    def some(doc: Any) -> bool:
        for p in ps:
            if p(doc):
                return True
        return False

    return some


def _not(pred: Predicate) -> Predicate:
    return lambda doc: not pred(doc)


def _split_key(key: str, path: tuple[str | int, ...]) -> tuple[str, ...]:
    segments = tuple(key.split("."))
    if not all(segments):
        raise _bad(path, "a field name must not be empty (nor start or end with '.', or hold '..')")
    return segments


def _compile_object(
    obj: Mapping[str, Any], field: tuple[str, ...], path: tuple[str | int, ...]
) -> Predicate:
    """The conjunction of ``obj``'s entries, applied at ``field`` (() for the payload):
    value operators test the field itself, ``$and``/``$or``/``$not`` combine filters on the
    same field, and any other key descends into it."""
    preds: list[Predicate] = []
    get = _lookup(field) if field else None
    for key, value in obj.items():
        here = (*path, key)
        if key.startswith("$"):
            if key in _LOGIC_OPS:
                preds.append(_compile_logic(key, value, field, here))
            elif key in _VALUE_OPS:
                if get is None:
                    raise _bad(
                        here,
                        f"{key} applies to a field: name one, e.g. {{'amount': {{'{key}': ...}}}}",
                    )
                _check_operand(key, value, here)
                preds.append(_compare(key, value, get))
            else:
                known = ", ".join(sorted(_VALUE_OPS | _LOGIC_OPS))
                raise _bad(here, f"unknown operator {key!r} (known: {known})")
            continue
        sub = (*field, *_split_key(key, here))
        if type(value) is dict:
            if not value:
                raise _bad(here, "an empty object tests nothing: use {'$eq': {}} to compare")
            preds.append(_compile_object(value, sub, here))
        else:
            preds.append(_compare("$eq", value, _lookup(sub)))
    return _all(preds)


def _compile_logic(
    op: str, value: Any, field: tuple[str, ...], path: tuple[str | int, ...]
) -> Predicate:
    if op == "$not":
        if type(value) is not dict or not value:
            raise _bad(
                path,
                f"$not takes one filter object, not {_json_type(value)}"
                " (to negate several, wrap them: {'$not': {'$or': [...]}})",
            )
        return _not(_compile_object(value, field, path))
    if type(value) is not list or not value:
        raise _bad(path, f"{op} takes a non-empty list of filter objects")
    preds = []
    for i, item in enumerate(value):
        if type(item) is not dict or not item:
            raise _bad((*path, i), f"must be a non-empty filter object, not {_json_type(item)}")
        preds.append(_compile_object(item, field, (*path, i)))
    return _all(preds) if op == "$and" else _any(preds)


def _check_size(flt: Any) -> None:
    """Bounds that keep a hostile filter from making matching slow: nesting and node count
    (checked before compiling, which recurses)."""
    stack: list[tuple[Any, int]] = [(flt, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_PAYLOAD_FILTER_DEPTH:
            raise InvalidInput(
                FIELD, f"must not be nested more than {MAX_PAYLOAD_FILTER_DEPTH} levels deep"
            )
        if nodes > MAX_PAYLOAD_FILTER_NODES:
            raise InvalidInput(
                FIELD, f"must hold at most {MAX_PAYLOAD_FILTER_NODES} keys and values"
            )
        if type(item) is dict:
            stack.extend((v, depth + 1) for v in item.values())
        elif type(item) is list:
            stack.extend((v, depth + 1) for v in item)


def compile_filter(flt: Mapping[str, Any]) -> Predicate:
    """The predicate of a payload filter; ``InvalidInput`` whose ``path`` is the JSON path
    of the first bad part (under ``payloadFilter``) if the filter is not valid."""
    if type(flt) is not dict:
        raise InvalidInput(FIELD, f"must be an object, not {_json_type(flt)}")
    _check_size(flt)
    if len(orjson.dumps(flt)) > MAX_PAYLOAD_FILTER_BYTES:
        raise InvalidInput(FIELD, f"must be at most {MAX_PAYLOAD_FILTER_BYTES} bytes as JSON")
    return _compile_object(flt, (), ())


def validate_filter(flt: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The filter to store: None for none (``{}`` filters nothing, so it is none as well)."""
    if flt is None or (type(flt) is dict and not flt):
        return None
    compile_filter(flt)
    return dict(flt)


def stored_filter(flt: Mapping[str, Any] | None) -> str | None:
    """A filter as the stores keep it (compact JSON text), which ``compiled`` takes."""
    return None if flt is None else orjson.dumps(flt).decode()


@lru_cache(maxsize=4096)
def compiled(stored: str) -> Predicate:
    """The predicate of a stored filter (its JSON text), compiled once per process. A stored
    filter that no longer compiles (a rule tightened since) matches nothing."""
    try:
        return compile_filter(orjson.loads(stored))
    except (InvalidInput, orjson.JSONDecodeError):
        return lambda doc: False


# --------------------------------------------------------------------------- payloads


class Payload:
    """A message's payload, parsed at most once however many endpoints test it."""

    __slots__ = ("_doc", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._doc: Any = MISSING

    @property
    def doc(self) -> Any:
        if self._doc is MISSING:
            try:
                self._doc = orjson.loads(self._raw)
            except orjson.JSONDecodeError:
                self._doc = None  # not an object: matches no filter
        return self._doc


def payload_matches(stored_filter: str | None, payload: Payload) -> bool:
    """An endpoint's stored filter (JSON text, None for none) against a message's payload.
    A payload that is not a JSON object matches no filter."""
    if stored_filter is None:
        return True
    doc = payload.doc
    return type(doc) is dict and compiled(stored_filter)(doc)
