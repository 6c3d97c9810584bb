"""Setting up apps and endpoints through hookpost's Svix-compatible REST API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from bench.common import EVENT_TYPE, check_loopback, payload


class ApiError(RuntimeError):
    pass


class Api:
    def __init__(self, base: str, token: str) -> None:
        check_loopback(base)
        self.base = base.rstrip("/")
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

    async def _call(
        self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> tuple[int, Any, float]:
        data = None if body is None else orjson.dumps(body)
        async with session.request(
            method, self.base + path, data=data, headers=self.headers
        ) as resp:
            raw = await resp.read()
            at = time.time()
            if resp.status >= 300:
                raise ApiError(f"{method} {path} -> {resp.status}: {raw[:300]!r}")
            return resp.status, (orjson.loads(raw) if raw else None), at

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
            while time.monotonic() < deadline:
                try:
                    await self._call(s, "GET", "/api/v1/app?limit=1")
                    return
                except (aiohttp.ClientError, ApiError, TimeoutError) as exc:
                    last = str(exc)
                await asyncio.sleep(0.1)
        raise ApiError(f"the API at {self.base} did not answer within {timeout:.0f}s: {last}")

    async def create_app(self, name: str, uid: str | None = None) -> str:
        async with aiohttp.ClientSession() as s:
            body: dict[str, Any] = {"name": name}
            if uid:
                body["uid"] = uid
            _, out, _ = await self._call(s, "POST", "/api/v1/app", body)
            return str(out["id"])

    async def create_event_type(self, name: str, schemas: dict[str, Any] | None = None) -> None:
        async with aiohttp.ClientSession() as s:
            body = {"name": name, "description": "bench", "schemas": schemas}
            await self._call(s, "POST", "/api/v1/event-type", body)

    async def create_endpoints(
        self,
        app_id: str,
        urls: list[str],
        concurrency: int = 32,
        extra: list[dict[str, Any]] | None = None,
    ) -> list[str]:
        """One endpoint per URL; ``extra[i]`` adds fields to the i-th one's body."""
        for url in urls:
            check_loopback(url)
        ids: list[str | None] = [None] * len(urls)
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

            async def one(i: int) -> None:
                async with sem:
                    _, out, _ = await self._call(
                        s,
                        "POST",
                        f"/api/v1/app/{app_id}/endpoint",
                        {
                            "url": urls[i],
                            "description": f"bench {i}",
                            **(extra or [{}] * len(urls))[i],
                        },
                    )
                    ids[i] = out["id"]

            await asyncio.gather(*(one(i) for i in range(len(urls))))
        return [i for i in ids if i is not None]

    async def send(self, app_id: str, size: int) -> tuple[str, float]:
        """One message; returns (message id, time the 202 was received)."""
        async with aiohttp.ClientSession() as s:
            _, out, at = await self._call(
                s,
                "POST",
                f"/api/v1/app/{app_id}/msg",
                {"eventType": EVENT_TYPE, "payload": payload(size)},
            )
            return str(out["id"]), at
