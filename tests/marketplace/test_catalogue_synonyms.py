"""The catalogue's search by other names: a manufacturer's Chinese and English names, the English and
Chinese names and abbreviations of kinds of instrument, a kind's abbreviation ranking that kind first,
and "did you mean" for a query a letter off a model, on the page and in the API."""
from __future__ import annotations

import html
import itertools
import re

import pytest

from marketplace.catalogue import services as catalogue
from marketplace.registry import search as registry_search
from marketplace.registry.models import InstrumentState
from marketplace.registry.synonyms import MANUFACTURERS, TERMS
from tests.marketplace.catalogue_fixtures import search  # noqa: F401  (fixture)

S = InstrumentState
_plain = itertools.count(1)


@pytest.fixture
def plain_instrument(create_instrument):
    """A published instrument that names neither a manufacturer nor a kind, but for the values given."""

    def make(**values):
        n = next(_plain)
        return create_instrument(state=S.PUBLISHED, **{
            "name_zh": "样品前处理装置", "name_en": "Sample preparation unit", "model": f"Plain-{n}",
            "manufacturer": "柯桥器械", "description": "", "capabilities": ["样品制备"], **values})

    return make


def ids(page) -> set[int]:
    return {item.id for item in page.items}


@pytest.mark.parametrize("chinese, english", [
    ("蔡司", "ZEISS"), ("赛默飞", "Thermo Fisher Scientific"), ("安捷伦", "Agilent Technologies"),
    ("布鲁克", "Bruker"), ("岛津", "Shimadzu"), ("日立", "Hitachi"),
])
def test_a_manufacturer_is_found_by_its_chinese_name_and_by_its_english_one(plain_instrument, search,
                                                                            chinese, english):
    by_english = plain_instrument(manufacturer=english)
    by_chinese = plain_instrument(manufacturer=chinese)
    other = plain_instrument()
    for query in (chinese, english, english.lower()):
        found = ids(search(q=query))
        assert {by_english.id, by_chinese.id} <= found, query
        assert other.id not in found, query


def test_zeiss_in_a_longer_query_still_finds_the_chinese_named_maker(plain_instrument, search):
    confocal = plain_instrument(manufacturer="蔡司", name_zh="激光扫描共聚焦显微镜", name_en="Confocal microscope")
    upright = plain_instrument(manufacturer="蔡司", name_zh="正置显微镜", name_en="Upright microscope")
    assert ids(search(q="Zeiss 共聚焦")) >= {confocal.id} and upright.id not in ids(search(q="Zeiss 共聚焦"))


@pytest.mark.parametrize("query, name_zh", [
    ("qPCR", "实时荧光定量PCR仪"), ("real-time PCR", "实时荧光定量PCR仪"),
    ("mass spectrometry", "气相色谱-质谱联用仪"), ("mass spectrometer", "电感耦合等离子体质谱仪"),
    ("SEM", "场发射扫描电子显微镜"), ("TEM", "透射电子显微镜"), ("XRD", "X射线衍射仪"), ("NMR", "核磁共振波谱仪"),
    ("FTIR", "傅里叶变换红外光谱仪"), ("HPLC", "高效液相色谱仪"), ("GC-MS", "气相色谱-质谱联用仪"),
])
def test_an_english_term_or_abbreviation_finds_the_instrument_named_only_in_chinese(plain_instrument, search,
                                                                                   query, name_zh):
    named = plain_instrument(name_zh=name_zh, name_en="")
    other = plain_instrument()
    found = ids(search(q=query))
    assert named.id in found and other.id not in found


@pytest.mark.parametrize("query", ["实时荧光定量PCR", "质谱", "扫描电镜"])
def test_a_chinese_term_finds_the_instrument_named_only_in_english(plain_instrument, search, query):
    named = plain_instrument(name_zh="分析仪", name_en={
        "实时荧光定量PCR": "qPCR system", "质谱": "Mass spectrometer", "扫描电镜": "Scanning electron microscope",
    }[query])
    assert named.id in ids(search(q=query))


def test_a_term_added_by_the_table_matches_whole_words_only(plain_instrument, search):
    """质谱 adds "ms": the MSO64B oscilloscope is no mass spectrometer."""
    oscilloscope = plain_instrument(name_zh="数字示波器", name_en="Digital oscilloscope", model="MSO64B")
    gc_ms = plain_instrument(name_zh="联用仪", name_en="GC-MS system")
    found = ids(search(q="质谱"))
    assert gc_ms.id in found and oscilloscope.id not in found


def test_an_abbreviation_ranks_the_instruments_of_that_kind_first(session, plain_instrument, search):
    from datetime import datetime, timezone

    semiconductor = plain_instrument(name_zh="半导体参数分析仪", name_en="Semiconductor parameter analyser")
    sem_model = plain_instrument(name_zh="能谱仪", name_en="EDS detector", model="SEM5000X")
    field_emission = plain_instrument(name_zh="场发射扫描电子显微镜", name_en="Field-emission microscope")
    tabletop = plain_instrument(name_zh="台式扫描电镜", name_en="Tabletop microscope")
    for day, instrument in enumerate((field_emission, tabletop, sem_model, semiconductor), start=1):
        instrument.published_at = datetime(2027, 1, day, tzinfo=timezone.utc)  # the SEMs the oldest
    session.flush()
    page = search(q="SEM", sort="relevance")
    order = [item.id for item in page.items if item.id in {semiconductor.id, sem_model.id, field_emission.id,
                                                           tabletop.id}]
    assert set(order[:2]) == {field_emission.id, tabletop.id}
    assert set(order[2:]) == {semiconductor.id, sem_model.id}


@pytest.mark.parametrize("query", ["", "   ", "-- ** --", "@@@", "的", "zzqxjkwv", "'; DROP TABLE instruments; --",
                                   '"unbalanced (quote', "OR AND NOT", "蔡司 OR", "NEAR(sem", "x" * 200])
def test_empty_and_garbage_queries_answer_without_error(plain_instrument, search, query):
    plain_instrument()
    page = search(q=query)
    assert page.total >= 0 and page.did_you_mean is None


@pytest.mark.parametrize("typed", ["Regulus 8110", "Reglus 8100", "regulus 8101", "REGULUS 81OO"])
def test_a_model_a_letter_off_finds_nothing_and_suggests_the_model(plain_instrument, search, typed):
    plain_instrument(model="Regulus 8100", manufacturer="日立 Hitachi")
    page = search(q=typed)
    assert (page.total, page.did_you_mean) == (0, "Regulus 8100")


def test_a_query_that_finds_enough_or_is_far_from_any_name_suggests_nothing(plain_instrument, search):
    for _ in range(3):
        plain_instrument(name_zh="流式细胞仪")
    assert search(q="流式细胞仪").did_you_mean is None  # three found
    assert search(q="Qwertyuiop 12").did_you_mean is None  # nothing near


def test_a_typo_of_a_manufacturer_suggests_its_name(plain_instrument, search):
    plain_instrument(manufacturer="马尔文帕纳科 Malvern Panalytical")
    assert search(q="Panalytcal").did_you_mean == "Panalytical"


def test_the_suggestions_follow_the_catalogue_when_this_process_commits(session, plain_instrument, search):
    instrument = plain_instrument(model="Quasarion 7")
    session.commit()
    assert search(q="Quasarian 7").did_you_mean == "Quasarion 7"
    instrument.model = "Velocira 9"
    session.commit()  # an instrument changed: the names are read again
    assert search(q="Velocirra 9").did_you_mean == "Velocira 9"
    assert "Quasarion 7" not in catalogue.suggestion_names(session)


def test_the_page_shows_did_you_mean_linking_to_the_corrected_search(client, plain_instrument):
    plain_instrument(model="Regulus 8100")
    page = client.get("/catalogue?q=Regulus+8110&sort=price").get_data(as_text=True)
    hint = re.search(r'<p data-testid="did-you-mean">(.*?)</p>', page, re.S).group(1)
    assert "您是不是要找：" in hint
    link = html.unescape(re.search(r'href="([^"]+)"', hint).group(1))
    assert link.startswith("/catalogue?") and "q=Regulus+8100" in link and "sort=price" in link
    assert 'data-testid="instrument-card"' in client.get(link).get_data(as_text=True)
    assert 'data-testid="did-you-mean"' not in client.get("/catalogue?q=zzqxjkwv").get_data(as_text=True)


def test_the_api_returns_did_you_mean(api_as, plain_instrument):
    plain_instrument(model="Regulus 8100")
    response = api_as(None).get("/api/v1/instruments", query_string={"q": "Regulus 8110"})
    assert response.status_code == 200
    assert (response.json["total"], response.json["did_you_mean"]) == (0, "Regulus 8100")
    found = api_as(None).get("/api/v1/instruments", query_string={"q": response.json["did_you_mean"]})
    assert found.json["total"] >= 1 and found.json["did_you_mean"] is None


def test_the_api_finds_a_chinese_brand_by_its_english_name(api_as, plain_instrument):
    caisi = plain_instrument(manufacturer="蔡司")
    response = api_as(None).get("/api/v1/instruments", query_string={"q": "Zeiss"})
    assert caisi.id in {item["id"] for item in response.json["items"]}


# makers of the demo and the generated district known in China by their Latin name only
LATIN_NAME_ONLY = {"ZYGO", "TEXTEST", "Gamry", "BioLogic", "J.A. Woollam", "Polytec", "Lake Shore", "TSI",
                   "James Heal", "Fire Testing Technology", "Tecniplast", "DSI", "Harvard Apparatus", "IPG Photonics"}


def test_every_manufacturer_of_the_demo_and_the_bench_district_has_a_synonym_group():
    from bench.instruments import MAKERS
    from marketplace.demo import INSTRUMENTS

    names = {name.lower() for group in MANUFACTURERS for name in group}
    makers = {row[4] for row in INSTRUMENTS} | {maker[0] for makers in MAKERS.values() for maker in makers}
    for maker in makers - LATIN_NAME_ONLY:
        assert any(name.lower() in names for name in (maker, *registry_search.maker_names(maker))), maker


def test_no_name_belongs_to_two_groups():
    seen: dict[str, tuple[str, ...]] = {}
    for group in (*MANUFACTURERS, *TERMS):
        for name in group:
            assert seen.setdefault(name.lower(), group) is group, name
    assert registry_search.expand("蔡司")  # the table compiles into the search
