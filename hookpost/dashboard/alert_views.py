"""Alert rules of the application (list, create, edit, delete) through
``services.alert_rules`` (docs/decisions/0038-alert-rules.md). Every call names ``v.app_id``:
another application's rule id answers 404, as the store scopes each read by application."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hookpost.dashboard import alert_form
from hookpost.dashboard.endpoint_views import catalog
from hookpost.dashboard.views import View, next_iterator
from hookpost.dashboard.web import redirect
from hookpost.domain.alerts import AlertRule
from hookpost.domain.errors import InvalidInput
from hookpost.domain.models import PageRequest


async def rules_list(request: Request, v: View) -> Response:
    iterator = request.query_params.get("iterator") or None
    page = await v.services.alert_rules.list(v.app_id, PageRequest(limit=50, iterator=iterator))
    return v.page(
        "alerts.html",
        rules=page.items,
        condition=alert_form.condition,
        more=next_iterator(page),
        notice=request.query_params.get("notice"),
    )


async def _form_page(
    v: View,
    values: dict[str, str],
    rule: AlertRule | None,
    error: InvalidInput | None = None,
) -> Response:
    errors: dict[str, str] = {}
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.path)
        errors[error.field] = f"{error.field}{where}: {error.message}"
    types = [t for t in await catalog(v) if not t.archived]
    return v.page(
        "alert_form.html",
        422 if error else 200,
        values=values,
        rule=rule,
        errors=errors,
        choices=alert_form.CHOICES,
        catalog=types,
    )


DEFAULTS = {"kind": "threshold", "metric": "count", "operator": "gt", "enabled": "on"}


async def rule_new(request: Request, v: View) -> Response:
    return await _form_page(v, dict(DEFAULTS), None)


async def rule_create(request: Request, v: View, fields: dict[str, str]) -> Response:
    try:
        spec = alert_form.given(alert_form.read(fields))
        await v.services.alert_rules.create(v.app_id, spec)
    except InvalidInput as exc:
        return await _form_page(v, fields, None, exc)
    return redirect(f"{v.base}/alerts?notice=created", request)


async def rule_edit(request: Request, v: View) -> Response:
    rule, _ = await v.services.alert_rules.get(v.app_id, request.path_params["rule_id"])
    return await _form_page(v, alert_form.fields_of(rule), rule)


async def rule_update(request: Request, v: View, fields: dict[str, str]) -> Response:
    rules = v.services.alert_rules
    rule, _ = await rules.get(v.app_id, request.path_params["rule_id"])
    try:
        # Every field of the form: a blank one removes the rule's (its default applies).
        await rules.patch(v.app_id, rule.id, alert_form.read(fields))
    except InvalidInput as exc:
        return await _form_page(v, fields, rule, exc)
    return redirect(f"{v.base}/alerts?notice=saved", request)


async def rule_delete(request: Request, v: View, fields: dict[str, str]) -> Response:
    await v.services.alert_rules.delete(v.app_id, request.path_params["rule_id"])
    return redirect(f"{v.base}/alerts?notice=deleted", request)


R = "/alerts/{rule_id}"
ROUTES = (
    ("/alerts", rules_list, ["GET"]),
    ("/alerts/new", rule_new, ["GET"]),
    ("/alerts/new", rule_create, ["POST"]),
    (R + "/edit", rule_edit, ["GET"]),
    (R + "/edit", rule_update, ["POST"]),
    (R + "/delete", rule_delete, ["POST"]),
)
