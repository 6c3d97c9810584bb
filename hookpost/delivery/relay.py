"""Deliveries to this deployment's own relay route (``hookpost listen``) go through a sender
of their own.

The relay route usually listens on loopback, which the SSRF guard refuses to every tenant's
endpoint. Rather than allow loopback for all, only URLs of the exact relay form under the
operator's ``HOOKPOST_RELAY_URL`` take the second, unguarded sender; every other URL takes the
guarded one as before (docs/decisions/0042).
"""

from __future__ import annotations

from collections.abc import Mapping

from hookpost.delivery.http import HttpSender, Response
from hookpost.delivery.ssrf import AddressPolicy
from hookpost.domain.relay import relay_prefix, relay_token

RELAY_CONNECTIONS = 64


class RelayRoutingSender(HttpSender):
    """An ``HttpSender`` (the guarded one) that hands relay URLs to an unguarded sender."""

    def __init__(
        self,
        policy: AddressPolicy,
        relay_base: str,
        *,
        total_timeout_s: float,
        connect_timeout_s: float,
        limit: int,
    ) -> None:
        super().__init__(
            policy,
            total_timeout_s=total_timeout_s,
            connect_timeout_s=connect_timeout_s,
            limit=limit,
        )
        self._base = relay_base
        self._prefix = relay_prefix(relay_base)
        # Its target is the operator's own setting, not a tenant's choice: no guard needed.
        self._relay = HttpSender(
            AddressPolicy.allow_all(),
            total_timeout_s=total_timeout_s,
            connect_timeout_s=connect_timeout_s,
            limit=RELAY_CONNECTIONS,
        )

    def is_relay(self, url: str) -> bool:
        return url.startswith(self._prefix) and relay_token(url, self._base) is not None

    async def start(self) -> None:
        await super().start()
        await self._relay.start()

    async def close(self) -> None:
        await self._relay.close()
        await super().close()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float | None = None
    ) -> Response:
        if url.startswith(self._prefix) and self.is_relay(url):
            return await self._relay.post(url, body, headers, timeout_s)
        return await super().post(url, body, headers, timeout_s)
