"""The dashboards: the bureau's and the auditor's for the district, a platform admin's for their own
platform; the window chosen in the URL; each chart as SVG and each table as CSV with the screen's numbers."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from core.db import utcnow
from monitoring import metrics
from tests.monitoring.test_metrics import local, week  # noqa: F401  (fixture)

WINDOW = "period=week&start=2026-09-28&end=2026-10-11"


@pytest.fixture
def computed(session, week, demo_user):
    from core.audit import Actor
    from tests.vouchers.conftest import programme_values
    from vouchers import services as vouchers

    bureau = demo_user("bureau")
    vouchers.create_programme(session, actor=Actor.of(bureau, None), user=bureau,
                              values=programme_values(year=2026, name="2026 监测测试计划"))
    metrics.recompute(session, date(2026, 9, 28), date(2026, 10, 11), now=utcnow())
    session.commit()
    return week


def test_the_bureau_sees_the_district_by_period_platform_industry_and_category(login_as, computed):
    page = login_as("bureau").get(f"/monitoring?{WINDOW}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for testid in ("figures-by-period", "figures-by-platform", "figures-by-industry", "figures-by-category",
                   "top-instruments", "bottom-instruments", "large-instruments", "chart-rates", "voucher-spending"):
        assert f'data-testid="{testid}"' in html, testid
    assert "利用率" in html and "共享率" in html
    assert "09-28" in html and "10-05" in html
    assert "2026 监测测试计划" in html and "¥1,000,000.00" in html  # the pool


def test_the_csv_carries_the_numbers_of_the_screen(login_as, computed):
    client = login_as("bureau")
    response = client.get(f"/monitoring/figures.csv?by=instrument&{WINDOW}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    header, *lines = rows
    row = next(line for line in lines if line[0] == computed.name_zh)
    figures = dict(zip(header, row, strict=True))
    assert figures["有效工作机时"] == "5.50"  # 2 + 2 + 1.5 hours
    assert figures["对外服务机时"] == "4.00"
    page = client.get(f"/monitoring?{WINDOW}").get_data(as_text=True)
    assert "5.50" in page and "4.00" in page


def test_each_chart_is_an_svg(login_as, computed):
    client = login_as("bureau")
    for url in (f"/monitoring/chart-rates.svg?{WINDOW}", f"/monitoring/chart-hours.svg?by=industry&{WINDOW}"):
        response = client.get(url)
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"
        assert "<svg" in response.get_data(as_text=True)


def test_a_platform_admin_sees_their_own_platform_only(login_as, computed, session):
    client = login_as("platform")
    own = client.get(f"/monitoring?{WINDOW}")
    assert own.status_code == 200 and computed.platform.name in own.get_data(as_text=True)
    assert 'data-testid="figures-by-platform"' not in own.get_data(as_text=True)
    other = computed.platform_id + 1
    assert client.get(f"/monitoring?platform_id={other}&{WINDOW}").status_code == 403
    assert login_as("enterprise").get("/monitoring").status_code == 403
    assert login_as("auditor").get(f"/monitoring?{WINDOW}").status_code == 200


@pytest.mark.parametrize("query", ["period=day", "period=decade", "start=2026-13-01", "start=2026-10-01&end=2026-09-01",
                                   "start=2020-01-01&end=2026-01-01"])
def test_a_bad_window_is_explained_not_a_500(login_as, computed, query):
    response = login_as("bureau").get(f"/monitoring?{query}")
    assert response.status_code == 422 and 'data-testid="window-error"' in response.get_data(as_text=True)


def test_the_metrics_api_gives_hours_as_decimals_and_money_in_fen(api_as, computed):
    response = api_as("bureau").get(f"/api/v1/metrics?scope=instrument&id={computed.id}&period=month"
                                    "&start=2026-09-28&end=2026-10-11")
    assert response.status_code == 200, response.json
    september, october = response.json["items"]
    assert september["start"] == "2026-09-01"
    assert september["effective_hours"] == 5.5 and september["external_hours"] == 4.0
    assert september["available_hours"] == 3 * 7.5 - 2
    assert september["utilization"] == round(5.5 / 20.5, 4) and september["sharing_rate"] == round(4 / 5.5, 4)
    assert october["effective_hours"] == 0 and october["sharing_rate"] is None


def test_the_metrics_api_checks_who_asks_and_what(api_as, computed):
    own = api_as("platform").get(f"/api/v1/metrics?scope=platform&id={computed.platform_id}&start=2026-09-01"
                                 "&end=2026-10-31")
    assert own.status_code == 200
    other = api_as("platform").get(f"/api/v1/metrics?scope=platform&id={computed.platform_id + 1}"
                                   "&start=2026-09-01&end=2026-10-31")
    assert other.status_code == 403
    assert api_as("platform").get("/api/v1/metrics?scope=district&start=2026-09-01&end=2026-10-31").status_code == 403
    assert api_as("enterprise").get("/api/v1/metrics?scope=district&start=2026-09-01&end=2026-10-31").status_code == 403
    assert api_as("auditor").get("/api/v1/metrics?scope=district&start=2026-09-01&end=2026-10-31").status_code == 200
    for query in ("scope=galaxy&start=2026-09-01&end=2026-10-31", "scope=district&period=week&start=2026-09-01&end=2026-10-31",
                  "scope=district&start=2026-10-31&end=2026-09-01", "scope=platform&start=2026-09-01&end=2026-10-31",
                  "scope=district&start=2020-01-01&end=2026-10-31", "scope=district&start=yesterday&end=2026-10-31"):
        response = api_as("bureau").get(f"/api/v1/metrics?{query}")
        assert response.status_code == 422, query
        assert response.json["error"]["code"]
    assert api_as("bureau").get("/api/v1/metrics?scope=instrument&id=999999&start=2026-09-01&end=2026-10-31"
                                ).status_code == 404


def test_the_quarterly_sharing_report_reads_back_from_xlsx_with_the_numbers_of_the_screen(login_as, computed):
    from openpyxl import load_workbook

    client = login_as("bureau")
    page = client.get("/monitoring/sharing-report?year=2026&quarter=3")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="sharing-report"' in html
    download = client.get("/monitoring/sharing-report.xlsx?year=2026&quarter=3")
    assert download.status_code == 200
    sheet = load_workbook(io.BytesIO(download.data)).active
    header, *rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert header[:4] == ["仪器名称", "型号", "生产厂商", "资产编号"] and "年有效工作机时" in header
    mine = next(row for row in rows if row[3] == computed.asset_number)
    figures = dict(zip(header, mine, strict=True))
    assert figures["年有效工作机时"] == "5.50" and figures["年对外服务机时"] == "4.00"  # Q3 ends 30 Sep
    assert figures["原值（元）"] == f"{computed.original_value_fen / 100:.2f}"
    for value in mine:
        assert f">{value}<" in html
    csv_rows = list(csv.reader(io.StringIO(client.get("/monitoring/sharing-report.csv?year=2026&quarter=3")
                                           .get_data(as_text=True).lstrip("\ufeff"))))
    assert csv_rows[0] == header and [str(v) for v in mine] in csv_rows


def test_a_platform_admin_reports_their_own_instruments(login_as, computed, session):
    response = login_as("platform").get("/monitoring/sharing-report?year=2026&quarter=4")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and computed.asset_number in html
    assert login_as("platform").get("/monitoring/sharing-report?year=2026&quarter=5").status_code == 422


def test_the_page_lists_the_most_used_instruments_and_the_csv_all(login_as, computed, monkeypatch, session,
                                                                  create_instrument):
    from monitoring import dashboard_views

    create_instrument(state="published")  # an instrument nobody used
    metrics.recompute(session, date(2026, 9, 28), date(2026, 10, 11), now=utcnow())
    session.commit()
    monkeypatch.setattr(dashboard_views, "INSTRUMENTS_SHOWN", 1)
    client = login_as("bureau")
    page = client.get(f"/monitoring?{WINDOW}").get_data(as_text=True)
    table = page.split('data-testid="figures-by-instrument"')[1].split("</table>")[0]
    assert table.count("<tr>") == 2 and computed.name_zh in table  # the header and the most used
    assert "有效工作机时最多的 1 台仪器" in page and "台仪器见 CSV" in page
    rows = client.get(f"/monitoring/figures.csv?by=instrument&{WINDOW}").get_data(as_text=True).splitlines()
    assert len(rows) == 3  # the header and both instruments
