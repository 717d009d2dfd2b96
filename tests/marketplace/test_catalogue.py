"""The public catalogue: search in Chinese and English, filters, sorts, paging, and its pages without login."""
from __future__ import annotations

import io
import re
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy import select

from core.audit import Actor
from core.errors import RuleBroken
from core.models import Enterprise, Industry, Organisation, Platform
from core.templating import yuan
from marketplace.catalogue import queries as catalogue_queries
from marketplace.catalogue.services import CatalogueSort
from marketplace.registry import services
from marketplace.registry.models import InstrumentState, SharingMode
from tests.marketplace.catalogue_fixtures import other_platform, search, trio  # noqa: F401  (fixtures)

S = InstrumentState


def found(page, among) -> list[int]:
    """The ids of `among` in the page, in the page's order."""
    wanted = {instrument.id for instrument in among}
    return [item.id for item in page.items if item.id in wanted]


# --- keywords ---------------------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ("质谱", "ms"), ("电镜", "em"), ("光谱", "ir"), ("扫描", "em"), ("红外光谱", "ir"),
    ("spectrometer", "ir"), ("microscope", "em"), ("Regulus", "em"), ("iS50", "ir"), ("TSQ Altis", "ms"),
    ("hitachi", "em"), ("日立", "em"), ("农药", "ms"), ("纤维", "ir"),
    ("zplyy", "ms"), ("cfssmdj", "em"), ("flybh", "ir"),  # pinyin initials: 质谱联用仪, 场发射扫描电镜, 傅里叶变换红外…
])
def test_keyword_finds_the_right_instrument_and_not_the_others(trio, search, query, expected):
    ms, em, ir = trio
    assert found(search(q=query), trio) == [{"ms": ms, "em": em, "ir": ir}[expected].id]


def test_a_manufacturer_shared_by_two_finds_both(trio, search):
    ms, em, ir = trio
    assert set(found(search(q="thermo"), trio)) == {ms.id, ir.id}


def test_a_query_without_any_word_is_no_filter(trio, search):
    assert len(found(search(q="  -- "), trio)) == 3


def test_instruments_outside_the_catalogue_never_appear(session, create_instrument, search):
    hidden = [create_instrument(state=state) for state in (S.DRAFT, S.SUBMITTED, S.REJECTED, S.RETIRED)]
    shown = [create_instrument(state=S.PUBLISHED), create_instrument(state=S.MAINTENANCE)]
    everything = hidden + shown
    assert set(found(search(q="质谱"), everything)) == {i.id for i in shown}
    assert set(found(search(), everything)) == {i.id for i in shown}
    assert search(q="质谱").total >= 2


def test_relevance_puts_a_name_match_before_a_capability_match(session, create_instrument, search):
    by_capability = create_instrument(state=S.PUBLISHED, name_zh="气相色谱仪", name_en="Gas chromatograph",
                                      model="8890 GC", capabilities=["质谱联用前处理"])
    by_name = create_instrument(state=S.PUBLISHED)
    by_capability.published_at = datetime(2027, 1, 1, tzinfo=timezone.utc)  # newer, yet after by relevance
    session.flush()
    assert found(search(q="质谱", sort="relevance"), [by_capability, by_name]) == [by_name.id, by_capability.id]


# --- filters ----------------------------------------------------------------------------------

@pytest.mark.parametrize("filters, expected", [
    ({"category": "01"}, {"ms", "em", "ir"}),
    ({"category": "0104"}, {"em"}),
    ({"category": "0101"}, {"ms"}),
    ({"category": "02"}, set()),
    ({"category": "9%"}, set()),
    ({"industry": Industry.SEMICONDUCTOR_OPTOELECTRONICS}, {"em"}),
    ({"industry": Industry.MODERN_TEXTILES}, {"ms", "ir"}),
    ({"industry": Industry.BIOMEDICINE}, set()),
    ({"large": True}, {"ms", "ir"}),  # the line itself counts as large
    ({"large": False}, {"em"}),
    ({"sharing_mode": SharingMode.APPOINTMENT}, {"em"}),
    ({"sharing_mode": SharingMode.INTERNAL}, {"ir"}),
    ({"price_min_fen": 25_000, "price_max_fen": 35_000}, {"em"}),
    ({"price_min_fen": 40_000}, {"ms"}),
    ({"price_max_fen": 20_000}, {"ir"}),
    ({"price_min_fen": 30_000, "price_max_fen": 30_000}, {"em"}),
    ({"q": "光谱", "large": True, "category": "01"}, {"ir"}),
])
def test_each_filter_keeps_exactly_the_matching_instruments(trio, search, filters, expected):
    names = dict(zip(("ms", "em", "ir"), trio, strict=True))
    assert set(found(search(**filters), trio)) == {names[n].id for n in expected}


def test_platform_filter(trio, search, other_platform):
    ms, em, ir = trio
    assert found(search(platform_id=other_platform.id), trio) == [em.id]
    assert set(found(search(platform_id=ms.platform_id), trio)) == {ms.id, ir.id}


def test_a_price_range_upside_down_finds_nothing(trio, search):
    assert search(price_min_fen=50_000, price_max_fen=10_000).total == 0


# --- sorts and pages --------------------------------------------------------------------------

@pytest.fixture(params=["walk", "apart"])
def browse_plan(request, monkeypatch):
    """Both ways a browse finds its page on PostgreSQL: walking an index in the sort's order (many
    matches) or sorting the matches apart (a few; catalogue_queries.SORT_APART_UP_TO). SQLite always walks."""
    monkeypatch.setattr(catalogue_queries, "SORT_APART_UP_TO", 0 if request.param == "walk" else 10_000)
    return request.param


@pytest.mark.parametrize("sort, language, expected", [
    ("newest", "zh_CN", ["ir", "em", "ms"]),
    ("relevance", "zh_CN", ["ir", "em", "ms"]),  # without a query: newest first
    ("price", "zh_CN", ["ir", "em", "ms"]),
    ("name", "zh_CN", ["ir", "em", "ms"]),  # 傅 < 场 < 液 in the dictionary's radical order
    ("name", "en", ["ir", "ms", "em"]),  # FTIR, LC-MS/MS, Scanning
])
def test_each_sort(trio, search, browse_plan, sort, language, expected):
    names = dict(zip(("ms", "em", "ir"), trio, strict=True))
    assert found(search(sort=sort, language=language), trio) == [names[n].id for n in expected]


def test_an_unknown_sort_is_refused(search):
    with pytest.raises(RuleBroken) as refused:
        search(sort="bogus")
    assert refused.value.field == "sort"


def test_pages_split_the_results_without_overlap(create_instrument, search):
    made = [create_instrument(state=S.PUBLISHED, name_en=f"Pagetest unit {n}") for n in range(5)]
    pages = [search(q="pagetest", sort=CatalogueSort.NAME, page=n, per_page=2) for n in (1, 2, 3, 4)]
    assert [len(p.items) for p in pages] == [2, 2, 1, 0]
    assert {p.total for p in pages} == {5} and pages[0].pages == 3
    assert sorted(i.id for p in pages for i in p.items) == sorted(i.id for i in made)
    assert list(pages[0].iter_pages()) == [1, 2, 3]


def test_a_browse_pages_its_results_in_order_either_way(create_instrument, search, browse_plan):
    made = [create_instrument(state=S.PUBLISHED, hourly_rate_district_enterprise_fen=77_701 + n % 3) for n in range(5)]
    pages = [search(category=made[0].category.code, price_min_fen=77_701, price_max_fen=77_703,
                    sort=CatalogueSort.PRICE, page=n, per_page=2) for n in (1, 2, 3, 4)]
    assert [len(p.items) for p in pages] == [2, 2, 1, 0] and {p.total for p in pages} == {5}
    in_order = sorted(made, key=lambda i: (i.hourly_rate_district_enterprise_fen, i.name_zh, i.id))
    assert [i.id for p in pages for i in p.items] == [i.id for i in in_order]


# --- pages --------------------------------------------------------------------------------------

def cards(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-instrument-id="(\d+)"', html)}


def test_catalogue_page_searches_without_login_and_shows_card_details(client, trio):
    ms, em, ir = trio
    response = client.get("/catalogue", query_string={"q": "质谱"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert ms.id in cards(html) and em.id not in cards(html) and ir.id not in cards(html)
    for text in ("液相色谱-质谱联用仪", "LC-MS/MS", "TSQ Altis Plus", "Thermo Fisher Scientific", "柯桥纺织产业创新研究院",
                 "¥400.00", 'data-testid="large-badge"', f'href="/platforms/{ms.platform_id}"', "开放共享"):
        assert text in html
    english = client.get("/catalogue", query_string={"q": "电镜", "lang": "en"}).get_data(as_text=True)
    assert "By appointment with the platform" in english and "预约共享" not in english


def test_catalogue_page_filters_come_from_the_url(client, trio, other_platform):
    ms, em, ir = trio
    html = client.get("/catalogue?category=01&large=y&min_yuan=150&max_yuan=250").get_data(as_text=True)
    assert cards(html) & {ms.id, em.id, ir.id} == {ir.id}
    html = client.get(f"/catalogue?platform_id={other_platform.id}&sharing_mode=appointment"
                      "&industry=semiconductor_optoelectronics").get_data(as_text=True)
    assert cards(html) & {ms.id, em.id, ir.id} == {em.id}
    assert 'data-testid="large-badge"' not in html  # the microscope is below the line
    # each select shows what the URL asked, in the page's order: sort, category, platform, industry, sharing mode
    assert re.findall(r'<option value="([^"]*)" selected>', html) == [
        "relevance", "", str(other_platform.id), "semiconductor_optoelectronics", "appointment"]


def platform_options(html: str) -> list[str]:
    select_html = re.search(r'<select[^>]*id="platform_id".*?</select>', html, re.S).group(0)
    return re.findall(r"<option[^>]*>([^<]*)</option>", select_html)


def test_the_filter_shows_what_this_process_commits_at_once_and_another_workers_change_within_a_minute(
        client, session, trio, monkeypatch):
    ms, _em, _ir = trio
    platform = session.get(Platform, ms.platform_id)
    session.commit()
    assert platform.name in platform_options(client.get("/catalogue").get_data(as_text=True))
    platform.name = "柯桥纺织产业创新研究院（新名）"
    session.commit()  # this process: the lists are dropped at the commit
    assert "柯桥纺织产业创新研究院（新名）" in platform_options(client.get("/catalogue").get_data(as_text=True))
    # another worker renames it: this process still shows what it read, until its lists are a minute old
    session.execute(sa.update(Organisation).where(Organisation.id == platform.id).values(name="另一名称"))
    session.commit()
    assert "另一名称" not in platform_options(client.get("/catalogue").get_data(as_text=True))
    later = time.monotonic() + catalogue_queries.LISTS_SECONDS + 1
    monkeypatch.setattr(catalogue_queries, "_clock", lambda: later)
    assert "另一名称" in platform_options(client.get("/catalogue").get_data(as_text=True))


def test_catalogue_page_explains_a_bad_filter_instead_of_searching(client, trio):
    html = client.get("/catalogue?min_yuan=500&max_yuan=100&platform_id=abc&lang=en").get_data(as_text=True)
    assert "The highest price is below the lowest." in html
    assert cards(html) == set()


def test_catalogue_page_links_to_further_pages_keep_the_search(client, create_instrument):
    for n in range(21):
        create_instrument(state=S.PUBLISHED, name_en=f"Pagetest unit {n}")
    html = client.get("/catalogue?q=pagetest&sort=name").get_data(as_text=True)
    assert len(cards(html)) == 20
    links = set(re.findall(r'href="(/catalogue\?[^"]+)"', html))
    assert any("page=2" in link and "q=pagetest" in link and "sort=name" in link for link in links)
    second = client.get("/catalogue?q=pagetest&sort=name&page=2").get_data(as_text=True)
    assert len(cards(second)) == 1 and not cards(second) & cards(html)


def test_instrument_page_shows_the_fee_table_to_the_fen_and_the_large_badge(client, trio):
    ms, em, _ir = trio
    response = client.get(f"/instruments/{ms.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    fees = html.split('data-testid="fees"')[1].split("</table>")[0]
    rows = re.findall(r'data-user-type="(\w+)">.*?<td class="text-end">(.*?)</td><td class="text-end">(.*?)</td>',
                      fees, re.S)
    assert rows == [("own_staff", "¥0.00", "¥200.00"), ("district_enterprise", "¥100.00", "¥400.00"),
                    ("other", "¥200.00", "¥600.00")]
    for text in ('data-testid="large-badge"', "¥3,200,000.00", "农药残留检测", "液体样品 1 mL", "陈老师",
                 "0575-88880000", "lab@example.com", "A 楼", "301", f'href="/platforms/{ms.platform_id}"',
                 "Thermo Fisher Scientific", "美国", "质谱仪器"):
        assert text in html
    assert 'data-testid="large-badge"' not in client.get(f"/instruments/{em.id}").get_data(as_text=True)


@pytest.mark.parametrize("state", [S.DRAFT, S.SUBMITTED, S.REJECTED, S.RETIRED])
def test_instrument_outside_the_catalogue_is_404_for_the_public_but_seen_by_its_platform_and_the_bureau(
        client, login_as, create_instrument, state):
    instrument = create_instrument(state=state)
    assert client.get(f"/instruments/{instrument.id}").status_code == 404
    assert login_as("enterprise").get(f"/instruments/{instrument.id}").status_code == 404
    assert login_as("platform").get(f"/instruments/{instrument.id}").status_code == 200
    assert login_as("bureau").get(f"/instruments/{instrument.id}").status_code == 200
    html = client.get("/catalogue").get_data(as_text=True)
    assert instrument.id not in cards(html)


def test_an_instrument_under_maintenance_stays_visible_with_its_state(client, create_instrument):
    instrument = create_instrument(state=S.MAINTENANCE)
    html = client.get(f"/instruments/{instrument.id}").get_data(as_text=True)
    assert 'data-testid="state-badge"' in html
    assert client.get("/instruments/999999").status_code == 404


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "navy").save(buffer, "JPEG")
    return buffer.getvalue()


def test_photos_are_served_only_for_instruments_the_caller_may_see(app, session, client, login_as, demo_user,
                                                                   create_instrument, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    admin = demo_user("platform")
    shown, hidden = create_instrument(state=S.PUBLISHED), create_instrument(state=S.DRAFT)
    photos = {instrument.id: services.add_photo(session, instrument, admin, actor=Actor.of(admin, None),
                                                photo=services.prepare_photo(jpeg()), upload_dir=tmp_path).stored_name
              for instrument in (shown, hidden)}
    with client.get(f"/instruments/photos/{photos[shown.id]}") as response:
        assert (response.status_code, response.mimetype) == (200, "image/jpeg")
    assert f"/instruments/photos/{photos[shown.id]}" in client.get(f"/instruments/{shown.id}").get_data(as_text=True)
    assert client.get(f"/instruments/photos/{photos[hidden.id]}").status_code == 404
    with login_as("platform").get(f"/instruments/photos/{photos[hidden.id]}") as response:
        assert response.status_code == 200
    assert client.get("/instruments/photos/..%2Fkequip.sqlite").status_code == 404


def test_platform_page_shows_the_platform_and_its_catalogue_instruments(session, client, trio, create_instrument):
    ms, em, ir = trio
    draft = create_instrument(state=S.DRAFT)
    platform = session.get(Platform, ms.platform_id)
    response = client.get(f"/platforms/{platform.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for text in (platform.name, platform.address):
        assert text in html
    assert cards(html) & {ms.id, em.id, ir.id, draft.id} == {ms.id, ir.id}
    assert f'href="/catalogue?platform_id={platform.id}"' in html


def test_platform_page_names_type_and_industries(login_as, client, session, other_platform):
    html = client.get(f"/platforms/{other_platform.id}", query_string={"lang": "en"}).get_data(as_text=True)
    assert "Technology centre" in html and "Semiconductors and optoelectronic information" in html
    assert "This platform has no instrument in the catalogue yet." in html
    enterprise = session.scalar(select(Enterprise.id))
    assert client.get(f"/platforms/{enterprise}").status_code == 404
    assert client.get("/platforms/999999").status_code == 404


def test_everyone_finds_the_catalogue_from_the_navigation_and_the_home_page(client, login_as):
    html = client.get("/").get_data(as_text=True)
    nav = html.split('data-testid="role-nav"', 1)[1].split('<ul class="navbar-nav">', 1)[0]  # drop-downs included
    assert 'href="/catalogue"' in nav
    assert html.count('href="/catalogue"') >= 2  # the navigation and the home page's button
    assert 'action="/catalogue"' in html  # and its search box
    assert 'href="/catalogue"' in login_as("enterprise").get("/dashboard").get_data(as_text=True)


@pytest.mark.parametrize("fen, shown", [(0, "¥0.00"), (5, "¥0.05"), (40_000, "¥400.00"), (123_456, "¥1,234.56"),
                                        (1_200_000_000, "¥12,000,000.00"), (-150, "-¥1.50"), (None, "")])
def test_yuan_filter_shows_amounts_to_the_fen(fen, shown):
    assert yuan(fen) == shown
