"""Every route declares who may use it, and the declaration holds for each demo account."""
from __future__ import annotations

import re

import pytest
from flask import Flask

from core import services
from core.auth import access_rule
from core.models import Organisation, Platform, RoleGrant
from tests.conftest import DEMO_EMAILS

PRINCIPALS = [None, *DEMO_EMAILS]


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) for every route of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return found


def test_every_route_declares_who_may_use_it(app):
    missing = [(endpoint, rule) for endpoint, _method, rule in routes(app)
               if access_rule(endpoint, app.view_functions[endpoint]) is None]
    assert not missing, f"routes without @public or @requires: {missing}"


def _published_instrument(session, demo_user) -> int:
    from core.audit import Actor
    from core.db import utcnow
    from marketplace.registry import services as registry
    from tests.marketplace.conftest import instrument_values

    admin, bureau = demo_user("platform"), demo_user("bureau")
    platform = session.get(Platform, admin.grants[0].organisation_id)
    instrument = registry.create_instrument(session, platform, admin, actor=Actor.system("test"), submit=True,
                                            values=instrument_values(session), now=utcnow())
    registry.publish_instrument(session, instrument, bureau, actor=Actor.system("test"), now=utcnow())
    return instrument.id


def _url(rule: str, user, session, instrument_id: int) -> str:
    """Fill a rule's arguments with objects of the principal's own where it has them."""
    own_org = user.grants[0].organisation_id if user and user.grants and user.grants[0].organisation_id else None
    first_platform = session.scalar(Platform.__table__.select().with_only_columns(Platform.id).order_by(Platform.id))
    values = {
        "org_id": own_org or first_platform,
        "user_id": user.id if user else 1,
        "grant_id": session.scalar(RoleGrant.__table__.select().with_only_columns(RoleGrant.id)
                                   .where(RoleGrant.user_id != (user.id if user else 0)).order_by(RoleGrant.id)),
        "token_id": 999999,
        "booking_id": 999999, "window_id": 999999, "qualification_id": 999999, "claim_id": 999999,
        "line_id": 999999, "relation_id": 999999, "change_id": 999999, "job_id": "no_such_job",
        "entry_id": 999999, "day_id": 999999, "year": 2027, "series_id": 999999,
        "programme_id": 999999, "application_id": 999999, "attachment_id": 999999, "voucher_id": 999999,
        "kind": "pool",
        "instrument_id": instrument_id,
        "photo_id": 999999,
        "stored_name": "none.jpg",
        "platform_id": first_platform,
        "number": 1,
        "token": "no-such-token",
        "filename": "kequip.css",
        "path": "x",
        "message_key": "none", "index": 0, "usage_id": 999999, "file_format": "csv", "chart": "rates",
        "alert_id": 999999, "rule_id": 999999,
    }
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(values[m.group(1)]), rule)


def _object_allows(endpoint: str, user, url: str, session) -> bool:
    """The object-level rule, for routes that load an organisation."""
    if "org_id" not in endpoint and "/organisations/" not in url:
        return True
    org_id = int(url.split("/organisations/")[1].split("/")[0])
    organisation = session.get(Organisation, org_id)
    if endpoint == "core.organisation":
        return services.can_view_organisation(user, organisation)
    if endpoint == "core.edit_organisation":
        return services.can_manage_organisation(user, organisation)
    return True


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p or "anonymous")
def test_each_demo_account_against_each_route(app, session, principal, login_as, api_as, demo_user):
    user = demo_user(principal) if principal else None
    page_client = login_as(principal) if principal else app.test_client()
    instrument_id = _published_instrument(session, demo_user)
    checked = 0
    for endpoint, method, rule in routes(app):
        if endpoint in ("static", "bootstrap.static") or endpoint == "core.logout":
            continue  # files; log-out is checked on its own (it would end this session)
        url = _url(rule, user, session, instrument_id)
        client = api_as(principal) if rule.startswith("/api/") else page_client  # a token each: one call revokes
        response = getattr(client, method.lower())(url)
        declared = access_rule(endpoint, app.view_functions[endpoint])
        context = f"{principal or 'anonymous'} {method} {url} → {response.status_code}"
        if declared.allows(user) and _object_allows(endpoint, user, url, session):
            assert response.status_code not in (401, 403), context
        elif user is None:
            assert response.status_code == 401, context
        else:
            assert response.status_code == 403, context
        checked += 1
    assert checked > 20


def test_platform_admin_cannot_edit_another_platform(login_as, session, demo_user):
    own = demo_user("platform").grants[0].organisation_id
    other = session.scalar(Platform.__table__.select().with_only_columns(Platform.id).where(Platform.id != own))
    client = login_as("platform")
    assert client.get(f"/organisations/{own}/edit").status_code == 200
    assert client.get(f"/organisations/{other}/edit").status_code == 403
    response = client.post(f"/organisations/{other}/edit", data={"name": "被改了", "platform_type": "laboratory",
                                                                "legal_form": "enterprise", "industries": ["biomedicine"]})
    assert response.status_code == 403
    assert session.get(Platform, other).name != "被改了"


def test_enterprise_member_cannot_see_another_enterprise(login_as, session, demo_user):
    from core.models import Enterprise

    own = demo_user("enterprise").grants[0].organisation_id
    other = session.scalar(Enterprise.__table__.select().with_only_columns(Enterprise.id).where(Enterprise.id != own))
    client = login_as("enterprise")
    assert client.get(f"/organisations/{own}").status_code == 200
    assert client.get(f"/organisations/{other}").status_code == 403
