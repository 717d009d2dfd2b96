"""The audit log as the auditor and finance read it: words, yuan, filters and the XLSX download."""
from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core.audit import Actor, record_audit
from core.models import AuditEntry, Enterprise, Platform


def table(response) -> str:
    """The log's rows, without the filter form (whose choices name every action)."""
    page = response.get_data(as_text=True)
    return page[page.index("<tbody"):page.index("</tbody>")]


@pytest.fixture
def entries(session, demo_user):
    """Two entries of known content, a day apart in Beijing time, by two different people."""
    finance, bureau = demo_user("finance"), demo_user("bureau")
    enterprise = session.scalar(select(Enterprise).order_by(Enterprise.id))
    cancelled = record_audit(session, Actor.of(bureau, "10.0.0.1"), "booking.cancelled", enterprise,
                             before={"state": "confirmed", "price_fen": 123456},
                             after={"state": "cancelled", "note": "样品未到", "cancellation_fee_fen": 5000})
    cancelled.at = datetime(2026, 3, 1, 17, 30, tzinfo=timezone.utc)  # 01:30 on 2 March in Beijing
    unknown = record_audit(session, Actor.of(finance, None), "ledger.reconciled", finance, after={"note": "月结"})
    unknown.at = datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)  # 3 March in Beijing
    session.commit()
    return cancelled, unknown


def test_finance_reads_actions_fields_and_yuan_in_chinese(login_as, entries):
    page = table(login_as("finance").get("/audit?subject_type=enterprises"))
    assert "预约已取消" in page and "企业 #" in page
    assert "价格（元）: ¥1,234.56" in page and "取消费（元）: ¥50.00" in page
    assert "备注: 样品未到" in page and "\\u" not in page and "123456" not in page


def test_an_action_without_a_label_shows_its_code(login_as, entries):
    page = table(login_as("auditor").get("/audit?person=finance@"))
    assert "ledger.reconciled" in page and "备注: 月结" in page and "预约已取消" not in page


@pytest.mark.parametrize("query, cancelled_shown, unknown_shown", [
    ("since=2026-03-02&until=2026-03-02", True, False),  # a Beijing day, though the entry is 1 March in UTC
    ("since=2026-03-03", False, True),
    ("action=booking.cancelled", True, False),
    ("subject_type=users", False, True),
    ("person=bureau@", True, False),
])
def test_filters_narrow_the_rows(login_as, entries, query, cancelled_shown, unknown_shown):
    page = table(login_as("auditor").get(f"/audit?{query}"))
    assert ("样品未到" in page) is cancelled_shown and ("月结" in page) is unknown_shown


def test_the_organisation_filter_is_the_actors(login_as, session, entries, demo_user):
    admin = demo_user("platform")
    platform = session.get(Platform, admin.grants[0].organisation_id)
    record_audit(session, Actor.of(admin, None), "booking_rules.saved", platform, after={"note": "平台改规则"})
    session.commit()
    page = table(login_as("finance").get("/audit", query_string={"organisation": platform.name[1:-1]}))
    assert "平台改规则" in page and "样品未到" not in page and "月结" not in page
    assert "平台改规则" not in table(login_as("finance").get("/audit?organisation=无此机构"))


def test_the_person_filter_matches_a_name(login_as, session, entries, demo_user):
    name = demo_user("finance").name
    page = table(login_as("auditor").get("/audit", query_string={"person": name}))
    assert "月结" in page and "样品未到" not in page


def test_subject_id_filter(login_as, entries):
    cancelled, _unknown = entries
    client = login_as("finance")
    assert "样品未到" in table(client.get(f"/audit?subject_id={cancelled.subject_id}&subject_type=enterprises"))
    assert "样品未到" not in table(client.get("/audit?subject_id=999999"))


@pytest.mark.parametrize("query", ["since=2026-13-45", "until=yesterday", "subject_id=abc", "subject_id=-3",
                                   "subject_id=99999999999999", "action=no.such", "subject_type=secrets",
                                   "person=" + "x" * 300, "page=-1", "page=abc", "organisation=%25_%25"])
def test_bad_filters_never_fail(login_as, entries, query):
    for path in ("/audit", "/audit.xlsx"):
        response = login_as("finance").get(f"{path}?{query}")
        assert response.status_code == 200, (path, query)


def test_a_bad_filter_is_shown_beside_its_field_and_not_applied(login_as, entries):
    response = login_as("auditor").get("/audit?since=2026-13-45")
    assert 'name="since" type="date" value="2026-13-45"' in response.get_data(as_text=True).replace(
        'class="form-control form-control-sm is-invalid" ', "")
    assert "is-invalid" in response.get_data(as_text=True)
    assert "样品未到" in table(response) and "月结" in table(response)


def test_finance_exports_the_filtered_log_as_xlsx(login_as, session, entries):
    response = login_as("finance").get("/audit.xlsx?since=2026-03-01&until=2026-03-03")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
    assert rows[0] == ("时间", "操作人", "操作", "对象", "变更前", "变更后", "IP")
    cancelled, unknown = entries
    expected = session.scalar(select(func.count(AuditEntry.id)).where(
        AuditEntry.at >= datetime(2026, 2, 28, 16, tzinfo=timezone.utc),
        AuditEntry.at < datetime(2026, 3, 3, 16, tzinfo=timezone.utc)))
    assert len(rows) - 1 == expected == 2
    assert rows[1][:4] == ("2026-03-03 10:00:00", "finance@kequip.test", "ledger.reconciled",
                           f"用户 #{unknown.subject_id}")
    assert rows[2][2] == "预约已取消" and rows[2][1] == "bureau@kequip.test" and rows[2][6] == "10.0.0.1"
    assert rows[2][4].splitlines() == ["状态: confirmed", "价格（元）: ¥1,234.56"]
    assert "备注: 样品未到" in rows[2][5].splitlines()


def test_only_the_bureau_auditor_and_finance_read_the_log(login_as):
    for who, status in (("bureau", 200), ("auditor", 200), ("finance", 200), ("platform", 403), ("enterprise", 403)):
        assert login_as(who).get("/audit.xlsx").status_code == status, who
        assert login_as(who).get("/audit").status_code == status, who
