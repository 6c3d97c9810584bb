"""The daily-work commands (issue 24) against a real server: one ``running_api`` (SQLite,
worker on, loopback receivers allowed, retries immediate) on a thread, shared by this module;
each command parsed and run as ``hookpost`` runs it, in text and with ``--json``."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from hookpost.cli import main
from tests.support.cli import (
    Result,
    ThreadServer,
    free_port,
    hookpost,
    poll_until,
    thread_server,
)
from tests.support.receiver import always, fail_then_ok


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    db = tmp_path_factory.mktemp("cli") / "hookpost.db"
    with thread_server(f"sqlite:///{db}") as server:
        yield server


def ok(result: Result) -> Result:
    assert result.code == 0, (result.out, result.err)
    assert result.err == ""
    return result


def new_app(srv: ThreadServer, uid: str) -> str:
    return str(ok(srv.cli("app", "create", uid, "--uid", uid, "--json")).json()["id"])


def new_endpoint(srv: ThreadServer, app: str, path: str, *flags: str) -> dict:
    url = srv.receiver.url(path)
    return ok(srv.cli("endpoint", "create", app, url, "--json", *flags)).json()


def wait_for_attempts(srv: ThreadServer, app: str, count: int) -> list[dict]:
    """The application's attempts once there are ``count`` (written after their answers)."""

    def attempts() -> list[dict]:
        return ok(srv.cli("attempts", app, "--json")).json()

    return poll_until(attempts, lambda found: len(found) == count)


def test_bare_hookpost_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    main([])  # returns: exit status 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hookpost")
    for command in ("app", "endpoint", "send", "attempts", "tail", "resend", "replay", "doctor"):
        assert command in out


def test_app_create_get_and_list(srv: ThreadServer) -> None:
    created = ok(srv.cli("app", "create", "Acme Inc", "--uid", "acme"))
    assert "uid:" in created.out and "acme" in created.out and "Acme Inc" in created.out
    again = ok(srv.cli("app", "create", "Acme Inc", "--uid", "acme", "--get-if-exists", "--json"))
    app = again.json()
    assert app["uid"] == "acme" and app["id"].startswith("app_")
    assert ok(srv.cli("app", "get", "acme", "--json")).json()["id"] == app["id"]
    assert app["id"] in ok(srv.cli("app", "get", app["id"])).out
    listed = ok(srv.cli("app", "list", "--json")).json()
    assert app["id"] in [a["id"] for a in listed]
    table = ok(srv.cli("app", "list")).out.splitlines()
    assert table[0].split() == ["ID", "UID", "NAME", "CREATED"]
    assert any(line.startswith(app["id"]) and "acme" in line for line in table[1:])


def test_endpoint_create_list_get_disable_enable(srv: ThreadServer) -> None:
    app = new_app(srv, "ep-app")
    text = ok(srv.cli("endpoint", "create", app, srv.receiver.url("ep"), "--uid", "main"))
    secret = next(line.split()[-1] for line in text.out.splitlines() if line.startswith("secret"))
    assert secret.startswith("whsec_")
    ep = ok(srv.cli("endpoint", "get", app, "main", "--json")).json()
    assert ep["url"] == srv.receiver.url("ep") and ep["disabled"] is False
    listed = ok(srv.cli("endpoint", "list", app, "--json")).json()
    assert [e["id"] for e in listed] == [ep["id"]]
    assert "main" in ok(srv.cli("endpoint", "list", app)).out

    disabled = ok(srv.cli("endpoint", "disable", app, "main"))
    assert disabled.out.strip() == f"endpoint {ep['id']} ({ep['url']}) is disabled"
    assert ok(srv.cli("endpoint", "get", app, ep["id"], "--json")).json()["disabled"] is True
    assert "state:        disabled" in ok(srv.cli("endpoint", "get", app, "main")).out
    enabled = ok(srv.cli("endpoint", "enable", app, "main", "--json")).json()
    assert enabled["disabled"] is False


def test_send_inline_from_a_file_and_from_stdin_is_delivered_signed(
    srv: ThreadServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = new_app(srv, "send-app")
    ep = new_endpoint(srv, app, "send", "--event-type", "invoice.paid")
    payload_file = tmp_path / "event.json"
    payload_file.write_text('{"invoice": 2}')
    monkeypatch.setattr("sys.stdin", io.StringIO('{"invoice": 3}'))

    first = ok(srv.cli("send", app, "invoice.paid", "--data", '{"invoice": 1}', "--json")).json()
    assert first["eventType"] == "invoice.paid" and first["payload"] == {"invoice": 1}
    second = ok(srv.cli("send", app, "invoice.paid", "--data", f"@{payload_file}"))
    assert "message:" in second.out and "msg_" in second.out
    ok(srv.cli("send", app, "invoice.paid", "--data", "-", "--event-id", "evt-3"))

    srv.run(srv.receiver.wait_for(3, "send"))
    got = srv.receiver.on("send")
    verifier = Webhook(ep["secret"])
    assert sorted(json.loads(r.body)["invoice"] for r in got) == [1, 2, 3]
    for request in got:
        verifier.verify(request.body, request.headers)  # raises if the signature is wrong


def test_send_refuses_what_is_not_a_json_object(srv: ThreadServer, tmp_path: Path) -> None:
    app = new_app(srv, "bad-send")
    for data, says in (
        ("[1, 2]", "must be a JSON object, not an array"),
        ("{nope", "the argument is not JSON"),
        (f"@{tmp_path / 'missing.json'}", "cannot read"),
    ):
        result = srv.cli("send", app, "a.b", "--data", data)
        assert result.code == 1 and result.out == ""
        assert result.err.startswith("hookpost: --data: ") and says in result.err
        assert len(result.err.strip().splitlines()) == 1


def test_attempts_by_status_and_endpoint(srv: ThreadServer) -> None:
    app = new_app(srv, "attempts-app")
    good = new_endpoint(srv, app, "good")
    srv.receiver.respond("bad", always(500))
    bad = new_endpoint(srv, app, "bad")
    msg = ok(srv.cli("send", app, "user.created", "--data", "{}", "--json")).json()
    srv.run(srv.receiver.wait_for(1, "good"))
    srv.run(srv.receiver.wait_for(3, "bad"))  # retry_schedule (0, 0): three attempts

    def attempts(*flags: str) -> list[dict]:
        return ok(srv.cli("attempts", app, "--json", *flags)).json()

    every = wait_for_attempts(srv, app, 4)
    assert {a["msgId"] for a in every} == {msg["id"]}
    assert [a["timestamp"] for a in every] == sorted((a["timestamp"] for a in every), reverse=True)
    failed = attempts("--status", "failed")
    assert len(failed) == 3 and {a["endpointId"] for a in failed} == {bad["id"]}
    assert {a["responseStatusCode"] for a in failed} == {500}
    only_good = attempts("--endpoint", good["id"], "--status", "succeeded")
    assert [a["endpointId"] for a in only_good] == [good["id"]]
    assert len(attempts("--limit", "2")) == 2

    table = ok(srv.cli("attempts", app, "--status", "failed")).out.splitlines()
    assert table[0].split() == ["TIME", "STATUS", "CODE", "MS", "ENDPOINT", "MESSAGE", "ATTEMPT"]
    assert len(table) == 4 and all("fail" in line and "500" in line for line in table[1:])


def test_resend_to_every_endpoint_or_one(srv: ThreadServer) -> None:
    app = new_app(srv, "resend-app")
    one = new_endpoint(srv, app, "resend-1")
    new_endpoint(srv, app, "resend-2")
    msg = ok(srv.cli("send", app, "a.b", "--data", "{}", "--json")).json()
    srv.run(srv.receiver.wait_for(1, "resend-1"))
    srv.run(srv.receiver.wait_for(1, "resend-2"))

    everywhere = ok(srv.cli("resend", app, msg["id"], "--json")).json()
    assert everywhere["msg"] == msg["id"] and len(everywhere["endpoints"]) == 2
    srv.run(srv.receiver.wait_for(2, "resend-1"))
    srv.run(srv.receiver.wait_for(2, "resend-2"))
    text = ok(srv.cli("resend", app, msg["id"], "--endpoint", one["id"]))
    assert text.out.strip() == f"resent {msg['id']} to {one['id']}"
    srv.run(srv.receiver.wait_for(3, "resend-1"))
    ids = {r.webhook_id for r in srv.receiver.on("resend-1")}
    assert ids == {msg["id"]}  # the same message each time


def test_replay_failed_deliveries_follows_the_task(srv: ThreadServer) -> None:
    app = new_app(srv, "replay-app")
    srv.receiver.respond("replay", fail_then_ok(3))  # every attempt of the first round fails
    ep = new_endpoint(srv, app, "replay")
    ok(srv.cli("send", app, "a.b", "--data", "{}"))
    srv.run(srv.receiver.wait_for(3, "replay"))

    def failed() -> list[dict]:
        return ok(srv.cli("attempts", app, "--status", "failed", "--json")).json()

    poll_until(failed, lambda found: len(found) == 3)  # the delivery has failed for good
    result = ok(srv.cli("replay", app, ep["id"], "--since", "1h"))
    lines = result.out.strip().splitlines()
    assert lines[0].startswith("task qtask_") and "(endpoint.recover): running" in lines[0]
    assert lines[-1].endswith("finished: 1 messages sent again"), lines
    srv.run(srv.receiver.wait_for(4, "replay"))  # sent again, and answered 200 this time

    dry = ok(
        srv.cli("replay", app, ep["id"], "--since", "1h", "--what", "all", "--dry-run", "--json")
    )
    task = dry.json()
    assert task["status"] == "finished" and task["task"] == "endpoint.bulk-replay"
    assert task["data"]["messagesMatched"] == 1


def test_replay_flags_that_need_what_all(srv: ThreadServer) -> None:
    result = srv.cli("replay", "x", "y", "--since", "1h", "--dry-run")
    assert result.code == 1 and result.err.strip() == "hookpost: --dry-run: only with --what all"


def test_tail_prints_a_new_attempt_as_it_happens(srv: ThreadServer) -> None:
    app = new_app(srv, "tail-app")
    new_endpoint(srv, app, "tail")
    ok(srv.cli("send", app, "old.event", "--data", "{}"))
    wait_for_attempts(srv, app, 1)

    # tail runs on a thread of its own, with stdout redirected there: nothing else may run a
    # command (which redirects stdout too) until it ends; the new message goes in directly.
    out = io.StringIO()
    results: list[Result] = []
    argv = ("tail", app, "--last", "1", "--count", "1", "--interval", "0.05")
    args = (*argv, "--url", srv.url, "--token", srv.token)
    tail = threading.Thread(target=lambda: results.append(hookpost(*args, out=out)))
    tail.start()
    try:
        poll_until(lambda: "following" in out.getvalue())
        before = out.getvalue().splitlines()
        assert len(before) == 2 and "success" in before[0]  # --last 1, then the banner
        sent = srv.run(srv.hp.messages.send(app, "new.event", {"n": 1}))
    finally:
        tail.join(20)
    assert not tail.is_alive()
    [result] = results
    assert result.code == 0, result.err
    new = result.out.splitlines()[2:]
    msg_id = sent.message.id
    assert len(new) == 1 and msg_id in new[0] and "success" in new[0] and " 200 " in new[0]


def test_tail_json_lines(srv: ThreadServer) -> None:
    app = new_app(srv, "tail-json")
    new_endpoint(srv, app, "tail-json")
    for n in range(2):
        ok(srv.cli("send", app, "e.v", "--data", json.dumps({"n": n})))
    wait_for_attempts(srv, app, 2)
    result = ok(srv.cli("tail", app, "--json", "--last", "2", "--count", "0"))
    attempts = [json.loads(line) for line in result.out.splitlines()]
    assert len(attempts) == 2 and attempts[0]["timestamp"] <= attempts[1]["timestamp"]


def test_server_errors_are_one_line_with_the_field(srv: ThreadServer) -> None:
    app = new_app(srv, "errors-app")
    missing = srv.cli("endpoint", "get", app, "nope")
    assert missing.code == 1 and missing.out == ""
    assert missing.err.startswith("hookpost: 404 not_found: ")
    bad_url = srv.cli("endpoint", "create", app, "ftp://example.com/x")
    assert bad_url.code == 1
    assert bad_url.err.startswith("hookpost: 422 invalid request: url: "), bad_url.err
    refused = srv.cli("app", "list", token="wrong-token")
    assert refused.code == 1 and refused.err.startswith("hookpost: 401 authentication_failed")
    assert "HOOKPOST_TOKEN" in refused.err
    for result in (missing, bad_url, refused):
        assert len(result.err.strip().splitlines()) == 1


def test_an_unreachable_server_is_one_line(srv: ThreadServer) -> None:
    result = hookpost("app", "list", "--url", "http://127.0.0.1:9")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("hookpost: cannot reach the hookpost server at http://127.0.0.1:9")
    assert "HOOKPOST_URL" in result.err


def test_url_and_token_from_the_environment(
    srv: ThreadServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKPOST_URL", f"{srv.url}/api/v1/")  # as the banner prints it
    monkeypatch.setenv("HOOKPOST_TOKEN", srv.token)
    assert isinstance(ok(hookpost("app", "list", "--json")).json(), list)


def test_doctor_checks_the_server_clock_and_token(srv: ThreadServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'doctor.db'}"
    port = srv.url.rsplit(":", 1)[1]
    result = srv.cli("doctor", "--db", db, "--port", port, "--json")
    checks = {c["check"]: c for c in result.json()}
    assert result.code == 0, result.out
    assert checks["server"]["status"] == "ok" and checks["token"]["status"] == "ok"
    assert checks["server clock"]["status"] == "ok"  # the server shares this host's clock
    assert checks["port"]["detail"] == f"127.0.0.1:{port} is taken by a hookpost that answers there"
    refused = srv.cli("doctor", "--db", db, "--port", str(free_port()), token="wrong")
    assert refused.code == 1
    [line] = [x for x in refused.out.splitlines() if x.startswith("FAIL")]
    assert line.startswith("FAIL  token         refused: 401") and "hookpost token create" in line


@pytest.mark.parametrize("group", ["app", "endpoint", "token", "alert-rule"])
def test_a_command_group_alone_prints_its_help(
    group: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main([group])  # returns: exit status 0, as bare `hookpost` does
    assert capsys.readouterr().out.startswith(f"usage: hookpost {group} ")
