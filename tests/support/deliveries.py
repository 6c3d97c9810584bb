"""Deliveries as a claim hands them out, for tests of the worker over the in-memory queue."""

from __future__ import annotations

from hookpost.domain.models import ClaimedDelivery, SigningKey, Trigger


def claimed(row: int, endpoint: str, due_at: int | None = None) -> ClaimedDelivery:
    """Row ``row`` (its delivery id; ``msg_<row>`` its message) of ``endpoint``, due at
    ``due_at`` (default: ``row``)."""
    return ClaimedDelivery(
        delivery_id=row,
        lease=f"lease-{row}",
        app_id="app_1",
        message_id=f"msg_{row}",
        endpoint_id=endpoint,
        event_type="a.b",
        payload=b"{}",
        msg_created_at=0,
        attempts=0,
        trigger=Trigger.SCHEDULED,
        url=f"http://{endpoint}.test/",
        headers={},
        keys=[SigningKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
        signature_scheme="standard-webhooks",
        retry_schedule=None,
        due_at=row if due_at is None else due_at,
    )
