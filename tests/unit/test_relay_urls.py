"""Which URLs are relay URLs (``domain.relay``), and what that opens: the URL check lets
exactly this deployment's relay URLs through, and only they take the unguarded sender."""

from __future__ import annotations

import pytest

from hookpost.delivery.relay import RelayRoutingSender
from hookpost.delivery.ssrf import AddressPolicy
from hookpost.domain.errors import InvalidInput
from hookpost.domain.relay import relay_base, relay_token, relay_url
from hookpost.settings import Settings
from hookpost.wiring import url_checker

BASE = "http://127.0.0.1:8071"
# Fixed, not drawn: every xdist worker must collect the same test ids.
TOKEN = "hMO9gnEnXHSpEeLDJa_4QH5ugSv7alamCAT50RYe-MQ"


def test_a_relay_url_names_its_token() -> None:
    assert relay_token(relay_url(BASE, TOKEN)) == TOKEN
    assert relay_token(relay_url(BASE, TOKEN), BASE) == TOKEN
    assert relay_token(relay_url("https://hooks.example.com/", TOKEN), None) == TOKEN


@pytest.mark.parametrize(
    "url",
    [
        f"{BASE}/api/v1/relay/{TOKEN}/x",
        f"{BASE}/api/v1/relay/{TOKEN}?a=1",
        f"{BASE}/api/v1/relay/{TOKEN}#f",
        f"{BASE}/api/v1/relay/short",
        f"{BASE}/api/v1/relay/../app/{TOKEN}",
        f"{BASE}/api/v1/relay/%2e%2e{TOKEN}",
        f"http://127.0.0.1:8072/api/v1/relay/{TOKEN}",  # another base
        f"http://127.0.0.1:8071@evil.example/api/v1/relay/{TOKEN}",
        f"{BASE}/api/v1/app/{TOKEN}",
    ],
)
def test_anything_else_is_not_one_of_this_bases(url: str) -> None:
    assert relay_token(url, BASE) is None


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("127.0.0.1", "http://127.0.0.1:8071"),
        ("0.0.0.0", "http://127.0.0.1:8071"),
        ("::", "http://[::1]:8071"),
        ("::1", "http://[::1]:8071"),
        ("hooks.internal", "http://hooks.internal:8071"),
    ],
)
def test_the_default_base_is_the_api_as_a_local_worker_reaches_it(host: str, base: str) -> None:
    assert relay_base(host, 8071) == base
    assert Settings(host=host, port=8071).relay_base() == base
    assert Settings(relay_url="https://api.example/").relay_base() == "https://api.example"


def test_the_url_check_lets_only_this_deployments_relay_urls_through() -> None:
    settings = Settings(https_only=True)
    check = url_checker(settings, AddressPolicy())
    check(relay_url(settings.relay_base(), TOKEN))  # loopback, http: the relay all the same
    for url in (f"{BASE}/hook", f"{BASE}/api/v1/relay/{TOKEN}/x", "http://10.0.0.1/"):
        with pytest.raises(InvalidInput):
            check(url)


def test_only_relay_urls_take_the_unguarded_sender() -> None:
    sender = RelayRoutingSender(
        AddressPolicy(), BASE, total_timeout_s=1, connect_timeout_s=1, limit=1
    )
    assert sender.is_relay(relay_url(BASE, TOKEN))
    assert not sender.is_relay(f"{BASE}/api/v1/health")
    assert not sender.is_relay(f"{BASE}/api/v1/relay/{TOKEN}?x")
