"""Micro-benchmark: the per-message cost of issue 19's checks on the create path, in one
process (no HTTP, no database): the payload's SHA-256 (always), the strict catalog's cached
type check, and JSON Schema validation (compiled once) of a ~1 KiB payload against a typical
schema, beside the orjson serialisation every message already pays. Also what compiling a
schema costs, which the catalog cache pays once per event type version.

    .venv/bin/python -m bench.catalog_check [--n 20000] [--sends]

``--sends`` also times the library's ``send`` into SQLite (the store included) with strict mode
off, on, and on with a JSON Schema.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from hookpost.domain.catalog import compile_schemas, payload_mismatch
from hookpost.domain.models import EventType, Page, PageRequest
from hookpost.domain.provenance import payload_sha256
from hookpost.services.catalog import CatalogCache

PAYLOAD: dict[str, Any] = {
    "id": "inv_0123456789",
    "amount": 12_345,
    "currency": "EUR",
    "customer": {"id": "cus_42", "tier": "gold", "email": "a@example.com"},
    "lines": [{"sku": f"sku-{i}", "qty": i + 1, "price": 100 + i} for i in range(8)],
    "note": "x" * 400,
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "amount", "currency", "customer"],
    "properties": {
        "id": {"type": "string", "pattern": "^inv_"},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "customer": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "tier": {"enum": ["gold", "silver", "bronze"]},
                "email": {"type": "string", "maxLength": 320},
            },
        },
        "lines": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": "integer"},
                },
            },
        },
        "note": {"type": "string"},
    },
}


class _OneType:
    """The store as the catalog cache reads it: one event type (hits never reach it)."""

    def __init__(self, schemas: dict[str, Any] | None) -> None:
        self.event_type = EventType("invoice.paid", schemas=schemas)

    async def get_event_type(self, name: str) -> EventType:
        return self.event_type

    async def list_event_types(self, page: PageRequest, archived: bool) -> Page[EventType]:
        return Page([self.event_type], True)


def _per_call_us(n: int, fn: Callable[[], Any]) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


async def _per_await_us(n: int, fn: Callable[[], Any]) -> float:
    await fn()
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n * 1e6


async def main(n: int) -> None:
    body = orjson.dumps(PAYLOAD)
    plain: Any = CatalogCache(_OneType(None))  # type: ignore[arg-type]
    schemad: Any = CatalogCache(_OneType({"1": SCHEMA}))  # type: ignore[arg-type]
    validators = compile_schemas({"1": SCHEMA})
    rows = [
        (
            "orjson.dumps of the payload (paid by every message)",
            _per_call_us(n, lambda: orjson.dumps(PAYLOAD)),
        ),
        ("payload_sha256 (every message)", _per_call_us(n, lambda: payload_sha256(body))),
        (
            "strict: cached type check, no schema",
            await _per_await_us(n, lambda: plain.check_message("invoice.paid", PAYLOAD)),
        ),
        (
            "strict: cached type check + schema validation",
            await _per_await_us(n, lambda: schemad.check_message("invoice.paid", PAYLOAD)),
        ),
        (
            "  of which payload_mismatch alone",
            _per_call_us(n, lambda: payload_mismatch(validators, PAYLOAD)),
        ),
        (
            "compile_schemas (once per event type version)",
            _per_call_us(max(n // 20, 10), lambda: compile_schemas({"1": SCHEMA})),
        ),
    ]
    try:  # for comparison only: the Rust validator schemathesis (a dev dependency) brings
        import jsonschema_rs

        rust = jsonschema_rs.validator_for(SCHEMA)
        rows.append(
            (
                "(jsonschema-rs is_valid, for comparison)",
                _per_call_us(n, lambda: rust.is_valid(PAYLOAD)),
            )
        )
    except ImportError:
        pass
    print(f"payload {len(body)} bytes, {n} iterations, µs per call (wall clock, one core):")
    for label, us in rows:
        print(f"  {label:<55} {us:8.1f}")


async def _burst(sends: list[tuple[Any, str]], body: dict[str, Any]) -> None:
    from bench.common import EVENT_TYPE

    await asyncio.gather(
        *(hp.messages.send_to_app_id(app_id, EVENT_TYPE, body) for hp, app_id in sends)
    )


async def library_sends(rounds: int = 40, concurrency: int = 64) -> None:
    """CPU per message of ``send`` into SQLite (this process, its writer thread included),
    with the bench's 1 KiB payload: strict mode off, on without a schema, on with the
    ``ingest-strict`` scenario's schema."""
    import tempfile

    from bench.common import EVENT_TYPE, payload
    from bench.scenarios import BENCH_SCHEMA
    from hookpost.domain.inputs import NewEventType
    from hookpost.wiring import Hookpost

    body = payload(1024)
    print(f"send() into SQLite, {rounds} x {concurrency} concurrent, CPU-µs per message:")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, strict, schemas) in enumerate(
            [
                ("strict off (the default)", False, None),
                ("strict, no schema", True, None),
                ("strict + JSON Schema", True, {"1": BENCH_SCHEMA}),
            ]
        ):
            async with Hookpost.open(f"sqlite:///{tmp}/{i}.db", strict_event_types=strict) as hp:
                app = await hp.apps.create("bench")
                await hp.event_types.create(NewEventType(EVENT_TYPE, "bench", schemas=schemas))

                sends = [(hp, app.id)] * concurrency
                for _ in range(5):
                    await _burst(sends, body)
                start = time.process_time()
                for _ in range(rounds):
                    await _burst(sends, body)
                per = (time.process_time() - start) / (rounds * concurrency) * 1e6
                print(f"  {label:<55} {per:8.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--sends", action="store_true", help="also time send() into SQLite")
    args = parser.parse_args()
    asyncio.run(main(args.n))
    if args.sends:
        asyncio.run(library_sends())
