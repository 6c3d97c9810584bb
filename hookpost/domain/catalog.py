"""What the event-type catalog allows: the strict catalog's rules (HOOKPOST_STRICT_EVENT_TYPES)
and payload validation against an event type's JSON Schemas.

Each rule is written here once; ``services.catalog`` applies them to messages and endpoint
subscriptions with a cached copy of the catalog (docs/decisions/0026).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from hookpost.domain.errors import InvalidInput
from hookpost.domain.matching import event_type_matches, is_event_type_pattern
from hookpost.domain.models import EventType

MAX_RULE_CHARS = 80  # of a schema value quoted in an error message


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """Something accepted that is probably a mistake; ``field`` names the request's field."""

    field: str
    message: str


def event_type_problem(name: str, known: EventType | None) -> str | None:
    """Why a message may not have type ``name`` in a strict catalog (``known``: the catalog's
    event type of that name, None if there is none), or None if it may."""
    if known is None:
        return f"event type {name!r} is not in the catalog"
    if known.archived:
        return f"event type {name!r} is archived"
    return None


def subscription_problem(entry: str, catalog: Mapping[str, EventType]) -> str | None:
    """Why an endpoint's ``eventTypes`` entry names nothing the catalog offers, or None: an
    exact name must be a live (not archived) event type, and a pattern (``*``, ``prefix.*``)
    must match at least one live event type."""
    if not is_event_type_pattern(entry):
        return event_type_problem(entry, catalog.get(entry))
    if any(not et.archived and event_type_matches(entry, name) for name, et in catalog.items()):
        return None
    return f"pattern {entry!r} matches no live event type in the catalog"


def subscription_problems(
    entries: Sequence[str] | None, catalog: Mapping[str, EventType]
) -> list[tuple[int, str]]:
    """(index, why) for each ``eventTypes`` entry the catalog does not allow."""
    found = []
    for i, entry in enumerate(entries or ()):
        problem = subscription_problem(entry, catalog)
        if problem is not None:
            found.append((i, problem))
    return found


# --------------------------------------------------------------------------- JSON Schemas


def _version_order(version: str) -> tuple[int, int, str]:
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def compile_schemas(schemas: Mapping[str, Any] | None) -> list[tuple[str, Validator]]:
    """One validator per schema version, newest (highest number) first. Compiling is the
    costly part (``validator_for`` and the validator's set-up): done once per event type
    version, the validators are reused for every message. ``$schema`` picks the draft
    (default: the latest); references are resolved only within the schema."""
    compiled = []
    for version in sorted(schemas or {}, key=_version_order, reverse=True):
        schema = schemas[version] if schemas else {}
        compiled.append((version, validator_for(schema)(schema)))
    return compiled


def check_schemas(schemas: Mapping[str, Any] | None) -> None:
    """InvalidInput naming ``schemas`` and the path within it unless each version is a valid
    JSON Schema (``check_schema`` against its draft's metaschema)."""
    for version, schema in (schemas or {}).items():
        if not isinstance(schema, dict):
            raise InvalidInput("schemas", "must be a JSON Schema object", (version,))
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:  # check_schema raised its best match already
            raise InvalidInput(
                "schemas",
                f"is not a valid JSON Schema: fails the metaschema's {_rule(exc)}",
                (version, *exc.absolute_path),
            ) from None


def payload_mismatch(validators: Sequence[tuple[str, Validator]], payload: Any) -> None:
    """InvalidInput naming ``payload`` and the failing JSON path unless the payload is valid
    against at least one version of the event type's schemas (so producers may move from one
    version to the next); the error given is the newest version's."""
    if not validators:
        return
    first: tuple[str, ValidationError] | None = None
    for version, validator in validators:
        error = best_match(validator.iter_errors(payload))
        if error is None:
            return
        if first is None:
            first = (version, error)
    assert first is not None
    version, error = first
    path: tuple[str | int, ...] = tuple(error.absolute_path)
    where = f"the event type's schema (version {version})"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [p for p in _strings(error.validator_value) if p not in error.instance]
        if missing:
            raise InvalidInput("payload", f"is required by {where}", (*path, missing[0]))
    # The message names the rule from the schema, never the payload's value (it may be secret).
    raise InvalidInput("payload", f"does not match {where}: fails its {_rule(error)}", path)


def _strings(values: Any) -> Iterable[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _rule(error: ValidationError | SchemaError) -> str:
    value = repr(error.validator_value)
    if len(value) > MAX_RULE_CHARS:
        value = value[: MAX_RULE_CHARS - 3] + "..."
    return f"{error.validator!r} rule ({value})"
