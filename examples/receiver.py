"""A webhook receiver that verifies every request hookpost sends it (the README's quickstart).

    python examples/receiver.py --port 9999 --secret whsec_...

It checks each request with ``hookpost.verify`` (``pip install hookpost[verify]``) and, when it
is installed, with the independent ``standardwebhooks`` library too (``pip install
standardwebhooks``); answers 204 to a genuine request and 400 to any other; and drops a
redelivery of a message it has already handled (delivery is at-least-once: a retry carries the
same ``webhook-id``). One line per request on stdout. The standard library's HTTP server: for
a receiver in FastAPI, Flask or Django, see docs/receivers.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hookpost.verify import SeenIds, VerificationError, verify

try:
    from standardwebhooks import Webhook
except ImportError:  # optional: the second, independent check
    Webhook = None


def check(secret: str, body: bytes, headers: dict[str, str]) -> tuple[Any, list[str]]:
    """The payload and the libraries that verified it; raises if one of them refuses."""
    payload = verify("standard-webhooks", secret, body, headers)  # VerificationError
    checked = ["hookpost.verify"]
    if Webhook is not None:
        # The same request through the reference library (it raises WebhookVerificationError).
        if Webhook(secret).verify(body, headers) != payload:
            raise VerificationError("standardwebhooks read another payload")
        checked.append("standardwebhooks")
    return payload, checked


def handler_for(secret: str, seen: SeenIds) -> type[BaseHTTPRequestHandler]:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the standard library's name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = dict(self.headers.items())
            webhook_id = self.headers.get("webhook-id", "?")
            try:
                payload, checked = check(secret, body, headers)
            except Exception as exc:  # VerificationError, or standardwebhooks' own error
                reason = str(exc) if isinstance(exc, VerificationError) else type(exc).__name__
                say(f"REFUSED {webhook_id}: {reason}")
                self.answer(400)
                return
            if not seen.add(webhook_id):
                say(f"duplicate {webhook_id} (already handled)")
            else:
                say(f"verified {webhook_id} ({', '.join(checked)}): {json.dumps(payload)}")
            self.answer(204)

        def answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # one line per request: ours
            pass

    return Receiver


def say(line: str) -> None:
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secret", required=True, help="the endpoint's secret (whsec_...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), handler_for(args.secret, SeenIds()))
    libraries = "hookpost.verify" + (" and standardwebhooks" if Webhook else "")
    say(f"receiver on http://{args.host}:{args.port}/ verifying with {libraries}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
