"""The catalogue's API: GET /api/v1/instruments and /api/v1/instruments/{id}, for anyone."""
from __future__ import annotations

import pytest

from marketplace.registry.models import InstrumentState
from tests.marketplace.catalogue_fixtures import other_platform, trio  # noqa: F401  (fixtures)

S = InstrumentState


@pytest.fixture
def named(trio):
    return dict(zip(("ms", "em", "ir"), trio, strict=True))


def ids(response, named) -> list[str]:
    """The names of the trio's instruments in the answer, in its order."""
    by_id = {instrument.id: name for name, instrument in named.items()}
    assert response.status_code == 200, response.json
    return [by_id[item["id"]] for item in response.json["items"] if item["id"] in by_id]


def test_anonymous_search_gives_the_public_record(api_as, named):
    response = api_as(None).get("/api/v1/instruments", query_string={"q": "质谱"})
    assert ids(response, named) == ["ms"]
    assert set(response.json) == {"items", "total", "page", "per_page", "did_you_mean"}
    assert (response.json["page"], response.json["per_page"], response.json["did_you_mean"]) == (1, 20, None)
    item = next(i for i in response.json["items"] if i["id"] == named["ms"].id)
    assert item["name_zh"] == "液相色谱-质谱联用仪" and item["name_en"] == "LC-MS/MS"
    assert item["category"] == {"code": "0101", "name_zh": "质谱仪器", "name_en": "Mass spectrometers"}
    assert item["platform"] == {"id": named["ms"].platform_id, "name": "柯桥纺织产业创新研究院"}
    assert (item["original_value_fen"], item["is_large"], item["sharing_mode"], item["state"]) == (
        320_000_000, True, "open", "published")
    assert item["fees"] == {"own_staff": {"setup_fee_fen": 0, "hourly_rate_fen": 20_000},
                            "district_enterprise": {"setup_fee_fen": 10_000, "hourly_rate_fen": 40_000},
                            "other": {"setup_fee_fen": 20_000, "hourly_rate_fen": 60_000}}
    assert item["capabilities"] == ["农药残留检测", "药物代谢物定量"]
    assert item["location"] == {"building": "A 楼", "room": "301"}
    assert item["contact"] == {"name": "陈老师", "phone": "0575-88880000", "email": "lab@example.com"}
    assert item["photos"] == [] and item["published_at"].startswith("2026-03-01T00:00:00")
    assert "asset_number" not in item and "review_note" not in item and "pending_changes" not in item


@pytest.mark.parametrize("query, expected", [
    ({"q": "电镜"}, ["em"]), ({"q": "光谱"}, ["ir"]), ({"q": "Regulus"}, ["em"]), ({"q": "spectrometer"}, ["ir"]),
    ({"category": "01"}, ["ir", "em", "ms"]), ({"category": "0104"}, ["em"]),
    ({"industry": "semiconductor_optoelectronics"}, ["em"]), ({"industry": "modern_textiles"}, ["ir", "ms"]),
    ({"large": "true"}, ["ir", "ms"]), ({"large": "false"}, ["em"]),
    ({"sharing_mode": "appointment"}, ["em"]),
    ({"price_min": 25_000, "price_max": 35_000}, ["em"]), ({"price_min": 40_000}, ["ms"]), ({"price_max": 20_000}, ["ir"]),
    ({"sort": "price"}, ["ir", "em", "ms"]), ({"sort": "newest"}, ["ir", "em", "ms"]),
    ({"sort": "name", "lang": "en"}, ["ir", "ms", "em"]), ({"sort": "name"}, ["ir", "em", "ms"]),
])
def test_filters_and_sorts(api_as, named, query, expected):
    assert ids(api_as(None).get("/api/v1/instruments", query_string=query), named) == expected


def test_platform_filter(api_as, named):
    response = api_as(None).get("/api/v1/instruments", query_string={"platform_id": named["em"].platform_id})
    assert ids(response, named) == ["em"]


def test_paging(api_as, create_instrument):
    made = {create_instrument(state=S.PUBLISHED, name_en=f"Pagetest unit {n}").id for n in range(5)}
    seen = []
    for page in (1, 2, 3):
        body = api_as(None).get("/api/v1/instruments", query_string={
            "q": "pagetest", "per_page": 2, "page": page, "sort": "name"}).json
        assert (body["total"], body["page"], body["per_page"]) == (5, page, 2)
        seen += [item["id"] for item in body["items"]]
    assert len(seen) == 5 and set(seen) == made


@pytest.mark.parametrize("query, field", [
    ({"per_page": 101}, "per_page"), ({"per_page": 0}, "per_page"), ({"page": 0}, "page"),
    ({"price_min": -1}, "price_min"), ({"price_max": "ten"}, "price_max"), ({"sort": "bogus"}, "sort"),
    ({"large": "maybe"}, "large"), ({"industry": "mining"}, "industry"), ({"sharing_mode": "all"}, "sharing_mode"),
    ({"platform_id": "x"}, "platform_id"), ({"platform_id": 2**40}, "platform_id"), ({"q": "质" * 201}, "q"),
    ({"page": 10**30}, "page"),
])
def test_bad_parameters_are_422_with_the_field(api_as, query, field):
    response = api_as(None).get("/api/v1/instruments", query_string=query)
    assert (response.status_code, response.json["error"]["code"]) == (422, "validation_error")
    assert field in response.json["error"]["fields"]


def test_a_nul_character_is_refused_at_the_door(api_as):
    assert api_as(None).get("/api/v1/instruments", query_string={"q": "a\x00b"}).status_code == 400


def test_an_upside_down_price_range_finds_nothing(api_as, named):
    response = api_as(None).get("/api/v1/instruments", query_string={"price_min": 40_000, "price_max": 20_000})
    assert (response.status_code, response.json["total"], response.json["items"]) == (200, 0, [])


@pytest.mark.parametrize("state", [S.DRAFT, S.SUBMITTED, S.REJECTED, S.RETIRED])
def test_instruments_outside_the_catalogue_are_hidden_from_the_public_but_not_from_their_platform_and_the_bureau(
        api_as, create_instrument, state):
    instrument = create_instrument(state=state)
    url = f"/api/v1/instruments/{instrument.id}"
    anonymous = api_as(None).get(url)
    assert (anonymous.status_code, anonymous.json["error"]["code"]) == (404, "not_found")
    assert api_as("enterprise").get(url).status_code == 404
    for name in ("platform", "bureau"):
        response = api_as(name).get(url)
        assert (response.status_code, response.json["state"]) == (200, state.value)
    for name in (None, "platform", "bureau"):  # the list is the catalogue, whoever asks
        listed = api_as(name).get("/api/v1/instruments", query_string={"q": "质谱", "per_page": 100}).json["items"]
        assert instrument.id not in {item["id"] for item in listed}


def test_published_and_maintenance_instruments_are_public(api_as, create_instrument):
    for state in (S.PUBLISHED, S.MAINTENANCE):
        instrument = create_instrument(state=state)
        response = api_as(None).get(f"/api/v1/instruments/{instrument.id}")
        assert (response.status_code, response.json["state"]) == (200, state.value)
    assert api_as(None).get("/api/v1/instruments/999999").status_code == 404
    assert api_as(None).get(f"/api/v1/instruments/{2**40}").status_code == 404


def test_the_openapi_document_describes_the_catalogue(api_as):
    spec = api_as(None).get("/api/v1/openapi.json").json
    parameters = {p["name"] for p in spec["paths"]["/api/v1/instruments"]["get"]["parameters"]}
    assert {"q", "category", "platform_id", "industry", "large", "sharing_mode", "price_min", "price_max", "sort",
            "page", "per_page"} <= parameters
    assert "/api/v1/instruments/{instrument_id}" in spec["paths"]
