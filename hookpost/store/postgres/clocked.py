"""The statements that read the clock, bound to the database's or to their callers'."""

from __future__ import annotations

from dataclasses import dataclass

from hookpost.store.postgres.sql import (
    CLAIM,
    CLAIM_CANCELING,
    CLAIM_HEADS,
    DB_NOW,
    DELIVERIES_INSERT,
    ENDPOINT_PACE,
    FINISH_SUCCESSES,
    FINISH_WITH_FAILURES,
    MESSAGE_CREATE,
    MESSAGE_CREATE_FOR,
    MESSAGE_CREATE_MANY,
    NEXT_DUE_FOR,
    ORDER_PROMOTE,
    QUEUE_DEPTH,
    RECOVER,
    RELEASE,
    RENEW,
    RESEND,
)


@dataclass(frozen=True, slots=True)
class Clocked:
    """The statements that read the clock, on the database's, or on their callers' (a store
    told so: tests that drive time through now_ms) with each one's now_ms parameter."""

    database_clock: bool
    claim_heads: str
    claim: str
    claim_canceling: str
    finish_successes: str
    finish_with_failures: str
    release: str
    renew: str
    resend: str
    recover: str
    message_create: str
    message_create_many: str
    message_create_for: str
    deliveries_insert: str
    queue_depth: str
    next_due_for: str
    endpoint_pace: str
    order_promote: str
    now: str  # for statements built per call: the database's clock, or $1

    @classmethod
    def on(cls, database_clock: bool) -> Clocked:
        def at(statement: str, now_ms: str) -> str:
            return statement if database_clock else statement.replace(DB_NOW, f"{now_ms}::bigint")

        return cls(
            database_clock=database_clock,
            claim_heads=at(CLAIM_HEADS, "$1"),
            claim=at(CLAIM, "$1"),
            claim_canceling=at(CLAIM_CANCELING, "$1"),
            finish_successes=at(FINISH_SUCCESSES, "$13"),
            finish_with_failures=at(FINISH_WITH_FAILURES, "$13"),
            release=at(RELEASE, "$1"),
            renew=at(RENEW, "$4"),
            resend=at(RESEND, "$4"),
            recover=at(RECOVER, "$1"),
            message_create=at(MESSAGE_CREATE, "$8"),
            message_create_many=at(MESSAGE_CREATE_MANY, "b.now"),
            message_create_for=at(MESSAGE_CREATE_FOR, "$8"),
            deliveries_insert=at(DELIVERIES_INSERT, "$4"),
            queue_depth=at(QUEUE_DEPTH, "$1"),
            next_due_for=at(NEXT_DUE_FOR, "$1"),
            endpoint_pace=at(ENDPOINT_PACE, "$2"),
            order_promote=at(ORDER_PROMOTE, "$1"),
            now=at(DB_NOW, "$1"),
        )
