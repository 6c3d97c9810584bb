"""``api.server.SlowClients``: which connections a sweep closes, with a clock of the test's."""

from __future__ import annotations

from dataclasses import dataclass, field

from hookpost.api.server import TICK_S, Phase, SlowClients, phase


@dataclass
class Transport:
    closed: bool = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@dataclass
class Cycle:
    response_complete: bool = False
    more_body: bool = True


@dataclass(eq=False)
class Connection:
    cycle: Cycle | None = None
    transport: Transport = field(default_factory=Transport)


def test_phases() -> None:
    assert phase(Connection())[0] is Phase.HEAD  # no complete head yet
    assert phase(Connection(Cycle(more_body=True)))[0] is Phase.BODY
    assert phase(Connection(Cycle(more_body=False)))[0] is Phase.BUSY
    assert phase(Connection(Cycle(response_complete=True)))[0] is Phase.HEAD  # keep-alive


def test_each_phase_is_timed_from_when_a_sweep_first_saw_it() -> None:
    now = [100.0]
    slow = SlowClients(head_timeout_s=10, body_timeout_s=30, clock=lambda: now[0])
    head, body, busy = Connection(), Connection(Cycle()), Connection(Cycle(more_body=False))
    conns = [head, body, busy]
    assert slow.sweep(conns) == 0
    now[0] += 9.9
    assert slow.sweep(conns) == 0
    now[0] += 0.1
    assert slow.sweep(conns) == 1 and head.transport.closed
    now[0] += 19.9
    assert slow.sweep([body, busy]) == 0
    # The body completing, then a new request: each phase starts its own clock.
    body.cycle = Cycle(more_body=False)
    assert slow.sweep([body, busy]) == 0
    body.cycle = Cycle()
    assert slow.sweep([body, busy]) == 0
    now[0] += 29.9
    assert slow.sweep([body, busy]) == 0
    now[0] += 0.1
    assert slow.sweep([body, busy]) == 1 and body.transport.closed
    now[0] += 1000
    assert slow.sweep([busy]) == 0  # a request the API works on is never timed
    assert not busy.transport.closed


def test_a_new_request_on_a_connection_restarts_its_clock() -> None:
    now = [0.0]
    slow = SlowClients(head_timeout_s=10, body_timeout_s=10, clock=lambda: now[0])
    conn = Connection(Cycle(response_complete=True))
    slow.sweep([conn])
    now[0] += 9
    conn.cycle = Cycle(response_complete=True)  # another request came and went meanwhile
    assert slow.sweep([conn]) == 0
    now[0] += 9
    assert slow.sweep([conn]) == 0
    now[0] += 1
    assert slow.sweep([conn]) == 1


def test_zero_turns_a_timeout_off_and_the_sweep_interval_follows_the_shortest() -> None:
    slow = SlowClients(head_timeout_s=0, body_timeout_s=0, clock=lambda: 1e9)
    assert slow.sweep([Connection(), Connection(Cycle())]) == 0
    assert SlowClients(0.1, 60).interval_s == TICK_S
    assert SlowClients(2, 60).interval_s == 0.5
    assert SlowClients(10, 60).interval_s == 1.0
