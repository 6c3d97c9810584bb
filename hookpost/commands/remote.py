"""The REST client of the daily-work commands: one aiohttp session against a hookpost server
(``--url`` / ``HOOKPOST_URL``, ``--token`` / ``HOOKPOST_TOKEN``), its errors as one line.

It speaks only the public API, so every command works against a remote server as well as a
local one (docs/decisions/0041-cli-for-daily-work.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from hookpost import __version__

API = "/api/v1"
PAGE_LIMIT = 250  # the API's largest page
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
EXIT_FAILURE = 1


class CommandError(Exception):
    """What a command prints as its one line (``hookpost: ...``) before exiting non-zero."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


class ApiFailure(CommandError):
    """A non-2xx answer: the status, and the server's message with the field it names."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)  # error_line's: it starts with the status
        self.http_status = status


def segment(value: str) -> str:
    """A path segment (ids and uids may hold ``.``; never a ``/``)."""
    return quote(value, safe="")


def base_url(url: str) -> str:
    """The server's root: ``http://host:port``, also when given as the banner's ``/api/v1``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url.removesuffix(API)


def error_line(status: int, body: bytes) -> str:
    """The server's error in one line: ``{code, detail}``, or a 422's fields and messages."""
    try:
        doc = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip().replace("\n", " ")
        return f"{status} from the server: {text[:200] or '(empty body)'}"
    detail = doc.get("detail") if isinstance(doc, dict) else None
    if isinstance(detail, list):  # 422: [{loc, msg, type}]
        parts = []
        for item in detail:
            loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path")]
            where = ".".join(loc)
            parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return f"{status} invalid request: " + "; ".join(parts)
    code = doc.get("code", "error") if isinstance(doc, dict) else "error"
    return f"{status} {code}: {detail}"


class Remote:
    """A hookpost server. Use as ``async with Remote(url, token) as api``."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = base_url(url)
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Remote:
        headers = {"User-Agent": f"hookpost-cli/{__version__}", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one); ApiFailure for a non-2xx."""
        status, _, raw = await self._send(method, path, body, params)
        if status >= 400:
            raise ApiFailure(status, _hint(status, error_line(status, raw)))
        return json.loads(raw) if raw.strip() else None

    async def probe(self, path: str) -> tuple[int, Mapping[str, str]]:
        """The status and headers of a GET, whatever the status."""
        status, headers, _ = await self._send("GET", path, None, None)
        return status, headers

    async def _send(
        self, method: str, path: str, body: Any, params: Mapping[str, Any] | None
    ) -> tuple[int, Mapping[str, str], bytes]:
        assert self._session is not None, "use Remote in `async with`"
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        try:
            async with self._session.request(
                method,
                self.url + path,
                data=data,
                params=query,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                return resp.status, resp.headers, await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise CommandError(
                f"cannot reach the hookpost server at {self.url} ({exc.strerror or exc}): "
                "start it (`hookpost serve`), or point --url / HOOKPOST_URL at it"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise CommandError(f"{method} {self.url}{path} failed: {reason}") from None

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def pages(self, path: str, limit: int | None = None, **params: Any) -> AsyncIterator[Any]:
        """Every item of a list route, page after page (at most ``limit`` items)."""
        iterator = None
        left = limit
        while left is None or left > 0:
            size = PAGE_LIMIT if left is None else min(left, PAGE_LIMIT)
            page = await self.get(path, limit=size, iterator=iterator, **params)
            for item in page["data"]:
                yield item
            if left is not None:
                left -= len(page["data"])
            iterator = page.get("iterator")
            if page.get("done", True) or iterator is None:
                return

    async def listing(self, path: str, limit: int | None = None, **params: Any) -> list[Any]:
        return [item async for item in self.pages(path, limit, **params)]


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hint(status: int, line: str) -> str:
    if status == 401:
        return f"{line} (set --token or HOOKPOST_TOKEN to an admin or application token)"
    return line
