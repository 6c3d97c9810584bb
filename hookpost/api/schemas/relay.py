"""Request bodies of the relay routes (``hookpost listen``'s protocol, docs/listen.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from hookpost.api.fields import EventTypeFilter, IdStr
from hookpost.api.schemas.base import _Model
from hookpost.domain.relay import DEFAULT_RELAY_UID

MAX_REPLY_BODY = 96 * 1024  # base64 of the 64 KiB the listener reads of a local answer


class RelayIn(_Model):
    uid: IdStr = DEFAULT_RELAY_UID  # the relay endpoint's uid: reused when it exists
    description: Annotated[str, Field(max_length=512)] = "hookpost listen"
    event_types: EventTypeFilter | None = None  # when created; null: every event type


class RelayReplyIn(_Model):
    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    status: Annotated[int, Field(ge=100, le=599)] | None = None  # None: no local answer
    body: Annotated[str, Field(max_length=MAX_REPLY_BODY)] = ""  # base64
    retry_after: Annotated[str, Field(max_length=64)] | None = None
    error: Annotated[str, Field(max_length=1024)] | None = None  # why there is no answer
