"""/api/v1/app/{app_id}/alert-rule and /api/v1/app/{app_id}/metric: alert rules and pushed
metrics (a hookpost extension; docs/decisions/0038-alert-rules.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from hookpost.api import mapping
from hookpost.api.alert_schemas import (
    AlertRuleIn,
    AlertRuleOut,
    AlertRulePatch,
    ListResponseAlertRuleOut,
    MetricBatchIn,
    MetricPushOut,
    MetricSampleIn,
)
from hookpost.api.routes.common import (
    DEFAULT_LIMIT,
    ERRORS,
    AppCtx,
    Iterator,
    Limit,
    StrictJsonRoute,
    empty,
    json_response,
    ordering,
    page_request,
)
from hookpost.domain.alerts import AlertRule, RuleState
from hookpost.services.alert_rules import rule_out

router = APIRouter(
    prefix="/api/v1/app/{app_id}",
    tags=["Alert Rule"],
    responses=ERRORS,
    route_class=StrictJsonRoute,
)
RuleId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^alrt_[A-Za-z0-9]{1,40}$")]
_KINDS = (
    "A rule watches the count of the application's messages (of `eventTypes`, matching "
    "`payloadFilter`), an aggregate of a numeric payload `field`, or a `pushedMetric`; "
    "`threshold` rules fire when `metric operator value` holds over `windowSeconds`, `anomaly` "
    "rules when the window's robust score against the `baselineWindows` before it reaches "
    "`sensitivity`, `digest` rules send a summary every `schedule`. Alerts are messages of "
    "the reserved types hookpost.alert.triggered, hookpost.alert.resolved and hookpost.digest."
)


def _rule_id(item: tuple[AlertRule, RuleState]) -> str:
    return item[0].id


def _out(item: tuple[AlertRule, RuleState]) -> dict[str, Any]:
    return rule_out(*item)


@router.get(
    "/alert-rule",
    response_model=ListResponseAlertRuleOut,
    operation_id="v1.alert-rule.list",
    summary="List Alert Rules",
)
async def list_rules(
    app: AppCtx,
    limit: Limit = DEFAULT_LIMIT,
    iterator: Iterator = None,
    order: Annotated[Literal["ascending", "descending"] | None, Query()] = None,
) -> Response:
    page = page_request(limit, iterator, ordering(order))
    found = await app.services.alert_rules.list(app.id, page)
    return json_response(mapping.list_out(found, _out, _rule_id))


@router.post(
    "/alert-rule",
    status_code=201,
    response_model=AlertRuleOut,
    operation_id="v1.alert-rule.create",
    summary="Create Alert Rule",
    description=_KINDS,
)
async def create_rule(app: AppCtx, body: AlertRuleIn) -> Response:
    given = body.model_dump(by_alias=True, exclude_unset=True)
    return json_response(_out(await app.services.alert_rules.create(app.id, given)), 201)


@router.get(
    "/alert-rule/{rule_id}",
    response_model=AlertRuleOut,
    operation_id="v1.alert-rule.get",
    summary="Get Alert Rule",
)
async def get_rule(app: AppCtx, rule_id: RuleId) -> Response:
    return json_response(_out(await app.services.alert_rules.get(app.id, rule_id)))


@router.patch(
    "/alert-rule/{rule_id}",
    response_model=AlertRuleOut,
    operation_id="v1.alert-rule.patch",
    summary="Patch Alert Rule",
    description="The fields given replace the rule's; null removes an optional field. A "
    "change of what the rule measures starts its history over.",
)
async def patch_rule(app: AppCtx, rule_id: RuleId, body: AlertRulePatch) -> Response:
    patch = body.model_dump(by_alias=True, exclude_unset=True)
    return json_response(_out(await app.services.alert_rules.patch(app.id, rule_id, patch)))


@router.delete(
    "/alert-rule/{rule_id}",
    status_code=204,
    operation_id="v1.alert-rule.delete",
    summary="Delete Alert Rule",
)
async def delete_rule(app: AppCtx, rule_id: RuleId) -> Response:
    await app.services.alert_rules.delete(app.id, rule_id)
    return empty()


@router.post(
    "/metric",
    status_code=202,
    response_model=MetricPushOut,
    operation_id="v1.metric.push",
    summary="Push Metric Samples",
    description="One sample `{name, value, timestamp?}` or `{samples: [...]}` (up to 1,000), "
    "for the application's rules whose `pushedMetric` names them; samples of metrics no rule "
    "uses are not kept (`ignored`), and samples are kept only as long as the longest window "
    "that reads them.",
)
async def push_metric(app: AppCtx, body: MetricBatchIn | MetricSampleIn) -> Response:
    given = body.samples if isinstance(body, MetricBatchIn) else [body]
    samples = [
        {
            "name": s.name,
            "value": s.value,
            "timestamp": None if s.timestamp is None else mapping.to_ms(s.timestamp),
        }
        for s in given
    ]
    recorded, ignored = await app.services.alert_rules.push(app.id, samples)
    return json_response({"recorded": recorded, "ignored": ignored}, 202)
