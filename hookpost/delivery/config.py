"""The delivery worker's settings, shared by its claim loop (worker.py) and its sending and
recording halves (sending.py, recording.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    retry_schedule: tuple[int, ...]
    max_in_flight: int = 256
    max_in_flight_per_endpoint: int = 32
    lease_s: float = 60.0
    poll_interval_s: float = 1.0
    claim_batch: int = 128
    disable_after_s: float = 5 * 24 * 3600.0
    disable_after_failures: int = 0  # domain.health; 0: off
    shutdown_grace_s: float = 10.0
    signature_header_prefix: str = "webhook"
    # How stale the cached event-type schedules and endpoint timeouts may be (seconds), and
    # the longest request timeout the lease allows (wiring.longest_request_s).
    options_refresh_s: float = 5.0
    max_request_timeout_s: float = 40.0
    # HOOKPOST_SEND_TRACEPARENT: the attempt span's context goes out as `traceparent`
    send_traceparent: bool = False
