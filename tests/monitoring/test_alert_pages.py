"""The alerts page, its header count, the bureau's rules page and GET /api/v1/alerts: who sees which
alerts, acknowledging and resolving with a note, bad input answered by field or with 422."""
from __future__ import annotations

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from core.db import utcnow
from monitoring import alerts
from monitoring.alert_rules import Context
from monitoring.models import Alert, AlertKind, AlertMailMode, AlertPreference, AlertRule, AlertState


@pytest.fixture
def stale(session, instrument) -> Alert:
    """An open alert about the demo platform's instrument (its entry not updated for 13 months)."""
    alerts.evaluate(session, context=Context(now=utcnow() + relativedelta(months=13), large_line_fen=1),
                    kinds=[AlertKind.STALE_ENTRY])
    return session.scalar(select(Alert).where(Alert.subject_type == "instruments", Alert.subject_id == instrument.id))


def test_the_header_counts_open_alerts_and_the_page_lists_them(login_as, stale):
    page = login_as("bureau").get("/alerts")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'data-alert-id="{stale.id}"' in html
    assert 'data-testid="header-count"' in html
    assert 'data-testid="header-alerts.alert_list"' not in login_as("enterprise").get("/").get_data(as_text=True)
    assert login_as("enterprise").get("/alerts").status_code == 403
    assert login_as("bureau").get("/alerts?state=closed").status_code == 422
    acknowledged = login_as("bureau").get("/alerts?state=acknowledged").get_data(as_text=True)
    assert f'data-alert-id="{stale.id}"' not in acknowledged


def test_acknowledge_then_resolve_with_a_note_on_the_page(session, login_as, stale):
    client = login_as("platform")
    assert client.post(f"/alerts/{stale.id}/acknowledge").status_code == 302
    session.refresh(stale)
    assert stale.state == AlertState.ACKNOWLEDGED
    refused = client.post(f"/alerts/{stale.id}/resolve", data={"note": " "})
    assert refused.status_code == 422 and "is-invalid" in refused.get_data(as_text=True)
    assert client.post(f"/alerts/{stale.id}/resolve", data={"note": "已更新目录"}).status_code == 302
    session.refresh(stale)
    assert (stale.state, stale.resolution_note) == (AlertState.RESOLVED, "已更新目录")
    assert client.post(f"/alerts/{stale.id}/acknowledge").status_code == 422  # resolved is final


def test_the_auditor_reads_but_does_not_handle(login_as, stale):
    auditor = login_as("auditor")
    assert auditor.get("/alerts").status_code == 200
    assert auditor.post(f"/alerts/{stale.id}/acknowledge").status_code == 403


def test_mail_preference_is_saved_and_a_bad_one_refused(session, login_as, demo_user):
    client = login_as("bureau")
    assert client.post("/alerts/mail-preference", data={"mode": "weekly"}).status_code == 422
    assert client.post("/alerts/mail-preference", data={"mode": "digest"}).status_code == 302
    assert session.get(AlertPreference, demo_user("bureau").id).mode == AlertMailMode.DIGEST


def test_the_bureau_sets_a_rule_and_an_override_with_errors_by_field(session, login_as, instrument):
    client = login_as("bureau")
    assert client.get("/alerts/rules").status_code == 200
    refused = client.post("/alerts/rules", data={"kind": "idle", "utilization_pct": "150", "benchmark_hours": "1200",
                                                  "is_enabled": "on"})
    assert refused.status_code == 422 and "is-invalid" in refused.get_data(as_text=True)
    assert client.post("/alerts/rules", data={"kind": "nonsense"}).status_code == 422
    form = client.get(f"/alerts/rules?kind=idle&category_id={instrument.category_id}")
    assert 'data-testid="override-form"' in form.get_data(as_text=True)
    assert client.post("/alerts/rules", data={"kind": "idle", "category_id": instrument.category_id,
                                              "utilization_pct": "3", "benchmark_hours": "800"}).status_code == 302
    rule = session.scalar(select(AlertRule).where(AlertRule.category_id == instrument.category_id))
    assert (rule.is_enabled, rule.thresholds) == (False, {"utilization_pct": 3, "benchmark_hours": 800})
    assert login_as("platform").post("/alerts/rules", data={"kind": "idle"}).status_code == 403
    assert client.post(f"/alerts/rules/{rule.id}/remove").status_code == 302
    assert session.scalar(select(func.count()).select_from(AlertRule).where(AlertRule.id == rule.id)) == 0


def test_the_api_lists_the_callers_alerts_by_state(api_as, stale):
    answer = api_as("bureau").get("/api/v1/alerts?state=open")
    assert answer.status_code == 200 and answer.json["page"] == 1
    [mine] = [item for item in answer.json["items"] if item["id"] == stale.id]
    assert (mine["rule"], mine["subject_type"], mine["state"]) == ("stale_entry", "instruments", "open")
    assert mine["figures"]["months"] == 12 and mine["reason"]
    assert any(item["id"] == stale.id for item in api_as("platform").get("/api/v1/alerts").json["items"])
    assert any(item["id"] == stale.id for item in api_as("auditor").get("/api/v1/alerts").json["items"])
    assert all(item["id"] != stale.id for item in api_as("bureau").get("/api/v1/alerts?state=resolved").json["items"])
    every = api_as("bureau").get("/api/v1/alerts").json["items"]
    first = api_as("bureau").get("/api/v1/alerts?per_page=1")
    assert first.json["items"] == every[:1] and first.json["has_more"] is (len(every) > 1)
    assert api_as("bureau").get("/api/v1/alerts?per_page=0").status_code == 422
    forbidden = api_as("enterprise").get("/api/v1/alerts")
    assert (forbidden.status_code, forbidden.json["error"]["code"]) == (403, "forbidden")
    bad = api_as("bureau").get("/api/v1/alerts?state=closed")
    assert bad.status_code == 422 and "error" in bad.json


def test_a_platform_admin_sees_only_their_platforms_alerts(session, api_as, login_as, stale):
    stale.platform_id = None  # as if it were the district's
    session.flush()
    assert all(item["id"] != stale.id for item in api_as("platform").get("/api/v1/alerts").json["items"])
    assert login_as("platform").post(f"/alerts/{stale.id}/acknowledge").status_code == 404
