"""The endpoint form: its fields, read into the services' inputs, and an endpoint written
back into fields for editing. Every parse error names its field."""

from __future__ import annotations

import json
from typing import Any

from hookpost.domain.errors import InvalidInput
from hookpost.domain.inputs import EndpointChanges, NewEndpoint
from hookpost.domain.models import Endpoint
from hookpost.domain.retry import policy_from_dict
from hookpost.domain.signing import SCHEME_NAMES

SCHEMES = SCHEME_NAMES


def _int(fields: dict[str, str], name: str) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(name, "must be a whole number") from None


def _json(fields: dict[str, str], name: str) -> Any:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(name, f"is not valid JSON ({exc})") from None


def _words(raw: str) -> list[str] | None:
    words = [w for w in raw.replace(",", " ").split() if w]
    return words or None


def _headers(raw: str) -> dict[str, str]:
    headers = {}
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise InvalidInput("headers", f"line {number}: expected `Name: value`")
        headers[name.strip()] = value.strip()
    return headers


def read(fields: dict[str, str], event_types: list[str]) -> dict[str, Any]:
    """The endpoint's settings as the form gives them (``event_types``: the ticked boxes)."""
    policy = _json(fields, "retryPolicy")
    if policy is not None and not isinstance(policy, dict):
        raise InvalidInput("retryPolicy", "must be a JSON object")
    payload_filter = _json(fields, "filter")
    scheme = fields.get("signatureScheme") or SCHEMES[0]
    if scheme not in SCHEMES:
        raise InvalidInput("signatureScheme", f"must be one of {', '.join(SCHEMES)}")
    return {
        "url": fields.get("url", "").strip(),
        "description": fields.get("description", ""),
        "event_types": event_types or None,
        "channels": _words(fields.get("channels", "")),
        "payload_filter": payload_filter,
        "retry_policy": None if policy is None else policy_from_dict(policy),
        "throttle_rate": _int(fields, "throttleRate"),
        "timeout_s": _int(fields, "timeoutSeconds"),
        "ordered": fields.get("ordered") == "on",
        "headers": _headers(fields.get("headers", "")),
        "signature_scheme": scheme,
    }


def new_endpoint(values: dict[str, Any]) -> NewEndpoint:
    if not values["url"]:
        raise InvalidInput("url", "is required")
    return NewEndpoint(**values)


def changes(values: dict[str, Any]) -> EndpointChanges:
    """Every field of the form replaces the endpoint's (the headers are set apart)."""
    return EndpointChanges(**{k: v for k, v in values.items() if k != "headers"})


def fields_of(endpoint: Endpoint) -> dict[str, str]:
    policy = endpoint.retry_policy
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "channels": ", ".join(endpoint.channels or []),
        "filter": "" if endpoint.payload_filter is None else json.dumps(endpoint.payload_filter),
        "retryPolicy": "" if policy is None else json.dumps(policy.as_dict()),
        "throttleRate": "" if endpoint.throttle_rate is None else str(endpoint.throttle_rate),
        "timeoutSeconds": "" if endpoint.timeout_s is None else str(endpoint.timeout_s),
        "ordered": "on" if endpoint.ordered else "",
        "headers": "\n".join(f"{k}: {v}" for k, v in endpoint.headers.items()),
        "signatureScheme": endpoint.signature_scheme,
    }
