"""``docs/permissions.md`` says what the route permission table says."""

from __future__ import annotations

import re

from hookpost.api.permissions import ROUTE_PERMISSIONS
from hookpost.domain.permissions import ADMIN_PERMISSIONS, APP_TOKEN_PERMISSIONS, Permission
from tests.unit.test_permission_table import ROOT, allowed, route_table


def test_docs_permissions_md_is_the_code() -> None:
    text = (ROOT / "docs" / "permissions.md").read_text()
    rows = re.findall(
        r"^\| (\w+) \| `([^`]+)` \| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", text, re.M
    )
    documented = {
        op: (method, path, perm.strip(), a.strip(), b.strip())
        for method, path, op, perm, a, b in rows
    }
    expected = {}
    for route in route_table():
        permission = ROUTE_PERMISSIONS[str(route.operation_id)]

        def answer(kind: str, permission: Permission | None = permission) -> str:
            if permission is None:
                return "yes (no token needed)"
            return "yes" if allowed(kind, permission) else "**403**"

        expected[str(route.operation_id)] = (
            next(iter(route.methods)),
            route.path,
            "(none)" if permission is None else f"`{permission.value}`",
            answer("admin"),
            answer("app-portal"),
        )
    assert documented == expected
    for permission in Permission:
        row = re.search(rf"^\| `{permission.value}` \| ([^|]+) \| ([^|]+) \|$", text, re.M)
        assert row is not None, permission
        assert row.group(1).strip() == ("yes" if permission in ADMIN_PERMISSIONS else "**403**")
        assert row.group(2).strip() == ("yes" if permission in APP_TOKEN_PERMISSIONS else "**403**")
