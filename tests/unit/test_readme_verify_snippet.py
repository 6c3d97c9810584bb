"""The README's receiver-side snippet, run as written against a request hookpost signed: each
of its three libraries gives the payload (svix's ``verify`` returns None, which the README once
took for the payload), and a forged body is refused."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from hookpost.domain.signing import STANDARD, generate_secret, scheme_for

README = Path(__file__).parents[2] / "README.md"


def snippet() -> str:
    text = README.read_text()
    section = text[text.index("## Verifying a webhook") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found
    return found.group(1)


def request(body: bytes, signed_body: bytes | None = None) -> dict[str, Any]:
    """The snippet's free names: a secret, and a request hookpost signed (``signed_body``)."""
    secret = generate_secret()
    signed = body if signed_body is None else signed_body
    headers = scheme_for(STANDARD).sign_headers("msg_1", int(time.time()), signed, [secret])
    return {"endpoint_secret": secret, "request_body_bytes": body, "request_headers": headers}


def test_every_library_in_the_snippet_gives_the_payload() -> None:
    code = snippet()
    # Each assignment of `payload`, checked one by one: the snippet up to it, then stop.
    ends = [m.end() for m in re.finditer(r"^payload = .*$", code, re.M)]
    assert len(ends) == 3, code
    for end in ends:
        namespace = request(b'{"id":"inv_1","amount":4200}')
        exec(code[:end], namespace)
        assert namespace["payload"] == {"id": "inv_1", "amount": 4200}, code[:end]


def test_the_snippet_refuses_a_forged_body() -> None:
    with pytest.raises(Exception, match=r"(?i)signature"):
        exec(snippet(), request(b'{"id":"inv_2"}', signed_body=b'{"id":"inv_1"}'))
