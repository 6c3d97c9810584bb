"""Domain errors. Adapters translate them: the API to HTTP status codes, the CLI to messages."""

from __future__ import annotations


class HookpostError(Exception):
    code = "error"


class NotFound(HookpostError):
    code = "not_found"

    def __init__(self, kind: str, ident: str = "") -> None:
        super().__init__(f"{kind} not found" + (f": {ident}" if ident else ""))
        self.kind = kind
        self.ident = ident


class Conflict(HookpostError):
    code = "conflict"


class StaleWrite(Conflict):
    """The row changed since it was read (optimistic concurrency): read it again and retry."""

    code = "conflict"


class InvalidInput(HookpostError):
    """Bad input the schema layer could not catch; ``field`` names the offending field, and
    ``path`` the place within it (JSON keys and list indexes), if any."""

    code = "validation"

    def __init__(self, field: str, message: str, path: tuple[str | int, ...] = ()) -> None:
        where = "".join(f"[{p!r}]" for p in path)
        super().__init__(f"{field}{where}: {message}")
        self.field = field
        self.message = message
        self.path = path


class SecretNotShown(HookpostError):
    """A secret that this deployment shows only once, when it is created or rotated (the API
    answers 403); the message says how to get a new one."""

    code = "forbidden"


class StoreUnavailable(HookpostError):
    """The database could not be reached; callers may retry."""

    code = "store_unavailable"


class PayloadTooLarge(InvalidInput):
    """The serialised payload is over the configured limit (the API answers 413)."""

    code = "payload_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__("payload", f"is {size} bytes, over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class LimitExceeded(HookpostError):
    """A quota is full (the API answers 409): ``setting`` names the variable that sets it."""

    code = "limit_exceeded"

    def __init__(self, what: str, setting: str, limit: int) -> None:
        super().__init__(f"{what}: the limit is {setting} ({limit})")
        self.setting = setting
        self.limit = limit
