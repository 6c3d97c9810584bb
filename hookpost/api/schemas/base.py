"""Enums and base models shared by the API's bodies."""

from enum import IntEnum, StrEnum
from typing import Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
)
from pydantic.alias_generators import to_camel

# --------------------------------------------------------------------------- enums


class MessageStatus(IntEnum):
    SUCCESS = 0
    PENDING = 1
    FAIL = 2
    SENDING = 3


class MessageStatusText(StrEnum):
    SUCCESS = "success"
    PENDING = "pending"
    FAIL = "fail"
    SENDING = "sending"


def status_text(status: MessageStatus) -> MessageStatusText:
    """The ``statusText`` that goes with a ``status``."""
    return MessageStatusText[MessageStatus(status).name]


class MessageAttemptTriggerType(IntEnum):
    SCHEDULED = 0
    MANUAL = 1


class BackgroundTaskStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class BackgroundTaskType(StrEnum):
    ENDPOINT_REPLAY = "endpoint.replay"
    ENDPOINT_RECOVER = "endpoint.recover"
    APPLICATION_STATS = "application.stats"
    MESSAGE_BROADCAST = "message.broadcast"
    SDK_GENERATE = "sdk.generate"
    EVENT_TYPE_AGGREGATE = "event-type.aggregate"
    APPLICATION_PURGE_CONTENT = "application.purge_content"
    ENDPOINT_BULK_REPLAY = "endpoint.bulk-replay"


# --------------------------------------------------------------------------- bases


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class _PatchModel(_Model):
    # PATCH body. Absent and null differ: check `model_fields_set`, never `is None`.
    # `model_dump(exclude_unset=True)` gives exactly the fields the client sent. Fields the
    # reference marks non-nullable reject null (`NotNull`, hidden from the JSON schema with
    # `SkipJsonSchema`); nullable ones accept it, and null then clears the value.
    pass


T = TypeVar("T")


class ListResponse(_Model, Generic[T]):
    """A page of a list. ``iterator`` is always serialised, ``null`` on the last page."""

    data: list[T]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class EmptyResponse(_Model):
    """``{}``: the body of 202 answers such as resend."""


class HttpErrorOut(_Model):
    code: str
    detail: str


class ValidationErrorItem(_Model):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(_Model):
    detail: list[ValidationErrorItem]
