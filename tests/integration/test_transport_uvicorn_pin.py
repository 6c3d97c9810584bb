"""hookpost.api.transport subclasses a private uvicorn class: these tests fail loudly when the
installed uvicorn is not the release it was checked against, or the internals it relies on
changed, and check that any other release gets uvicorn's own protocol."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from pathlib import Path

import pytest
import uvicorn
from uvicorn.protocols import utils as protocol_utils
from uvicorn.protocols.http import flow_control, httptools_impl
from uvicorn.server import ServerState

from hookpost.api import transport
from hookpost.api.transport import CoalescingHttpToolsProtocol, CoalescingTransport

LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"

RECHECK = (
    "Re-check hookpost/api/transport.py against this uvicorn before widening "
    "transport.UVICORN_TESTED: that HttpToolsProtocol.__init__ still sets self.loop, that "
    "connection_made keeps the transport it is given and every response write goes through "
    "it, and that CoalescingTransport handles every transport method uvicorn calls (a write-like "
    "call it does not gather would reorder bytes on the wire). Re-check hookpost/api/server.py "
    "too: that a connection's cycle (response_complete, more_body), a scope gaining 'method' "
    "once its head is complete, Server.on_tick and server_state.connections mean what it reads "
    "(tests/integration/test_slow_clients.py). "
    "See docs/decisions/0014-one-socket-write-per-response.md."
)

# Every transport method uvicorn's httptools protocol (and the helpers it hands the transport
# to) called when this module was checked (uvicorn 0.54.0). CoalescingTransport gathers
# ``write`` and flushes before ``close``/``set_protocol``; the rest pass straight through.
KNOWN_TRANSPORT_CALLS = {
    "close",
    "get_extra_info",
    "is_closing",
    "pause_reading",
    "resume_reading",
    "set_protocol",
    "write",
}


def _locked_uvicorn() -> str:
    match = re.search(r"^uvicorn==(\S+)$", LOCK.read_text(), re.MULTILINE)
    assert match, f"{LOCK} pins no uvicorn"
    return match.group(1)


def test_the_installed_uvicorn_is_the_locked_one_and_the_one_transport_was_checked_against() -> (
    None
):
    locked = _locked_uvicorn()
    assert uvicorn.__version__ == locked, (
        f"uvicorn {uvicorn.__version__} is installed but requirements.lock pins {locked}. "
        + RECHECK
    )
    assert transport.uvicorn_problem() is None, (
        f"{transport.uvicorn_problem()}: requirements.lock pins uvicorn {locked}. " + RECHECK
    )
    assert transport.COALESCING, "hookpost serve would run without one write per response"


def test_the_transport_methods_uvicorn_calls_are_the_ones_transport_was_checked_against() -> None:
    source = "".join(
        inspect.getsource(module) for module in (httptools_impl, flow_control, protocol_utils)
    )
    called = set(re.findall(r"\btransport\.(\w+)\(", source.replace("_transport.", "transport.")))
    new, gone = sorted(called - KNOWN_TRANSPORT_CALLS), sorted(KNOWN_TRANSPORT_CALLS - called)
    assert not new and not gone, (
        f"uvicorn {uvicorn.__version__}'s protocol now calls transport methods {new} and no "
        f"longer {gone}. " + RECHECK
    )


class _Transport(asyncio.Transport):
    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def is_closing(self) -> bool:
        return False


async def _app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    pass


def _protocol() -> CoalescingHttpToolsProtocol:
    config = uvicorn.Config(_app, lifespan="off", log_level="warning")
    return CoalescingHttpToolsProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )


async def test_uvicorns_protocol_keeps_the_coalescing_transport_it_is_given() -> None:
    protocol = _protocol()
    raw = _Transport()
    protocol.connection_made(raw)
    assert isinstance(protocol.transport, CoalescingTransport), (
        f"uvicorn {uvicorn.__version__}'s HttpToolsProtocol does not keep the transport "
        "connection_made is given. " + RECHECK
    )
    assert protocol.loop is asyncio.get_running_loop(), RECHECK
    protocol.connections.discard(protocol)


async def test_without_a_checked_uvicorn_the_protocol_is_uvicorns_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "COALESCING", False)
    protocol = _protocol()
    raw = _Transport()
    protocol.connection_made(raw)
    assert protocol.transport is raw
    protocol.connections.discard(protocol)


@pytest.mark.parametrize("version", ["0.99.0", "0.53.9", "0.54.0rc1", "0.54.0.dev1", "unknown"])
def test_an_unchecked_uvicorn_release_turns_coalescing_off_with_a_warning(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hookpost.api"):
        assert transport.check_uvicorn(version) is False
    assert f"uvicorn {version} is not a release" in caplog.text
    assert "uvicorn's own protocol" in caplog.text


def test_the_checked_releases_keep_coalescing_on() -> None:
    low, high = transport.UVICORN_TESTED
    assert transport.uvicorn_problem(low) is None
    assert transport.uvicorn_problem(high) is None
