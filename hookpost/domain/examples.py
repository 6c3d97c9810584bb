"""The payload of an example message (``send-example``)."""

from __future__ import annotations

from typing import Any

from hookpost.domain.models import EventType


def example_payload(event_type: EventType | None, name: str, index: int = 0) -> dict[str, Any]:
    """The ``index``-th (else the first) example of the event type's newest schema that has
    examples; a generic object when there is none (or no such event type)."""
    if event_type is not None and event_type.schemas:
        for version in sorted(event_type.schemas, reverse=True):
            examples = event_type.schemas[version].get("examples")
            if isinstance(examples, list) and examples:
                chosen = examples[index] if 0 <= index < len(examples) else examples[0]
                if isinstance(chosen, dict):
                    return chosen
    return {"example": True, "eventType": name, "message": "an example event"}
