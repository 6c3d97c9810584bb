"""Why an endpoint is disabled (``endpoints.disabled_reason``, and the API's
``health.disabledReason``): set by the health rules (``domain.health``), by a 410 answer
(``domain.retry``), or by hand."""

from __future__ import annotations

GONE_410 = "gone_410"
FAILING_TOO_LONG = "failing_too_long"
CONSECUTIVE_FAILURES = "consecutive_failures"
MANUAL = "manual"
DISABLED_REASONS = (GONE_410, FAILING_TOO_LONG, CONSECUTIVE_FAILURES, MANUAL)
