"""Full-text search over the catalogue, in Chinese and English, on SQLite (FTS5) and PostgreSQL (tsvector).

Chinese has no spaces, and a two-character query (质谱, 电镜, 光谱) must find 质谱仪 or 扫描电镜. So the
indexed text is a list of tokens: every overlapping pair of characters (bigram) of each run of Chinese
characters, and each Latin word or number in lower case. A query is cut the same way and every token
must match: a Chinese query of any length finds the texts that contain it; a Latin word also matches
as a prefix (so "thermo" finds "ThermoFisher"). Both databases index the same token string.

The Chinese name also gives the pinyin initials of each of its runs and of the whole name (质谱仪 →
"zpy"), so "zpy" or "smdj" (扫描电镜) typed on a keyboard without an input method finds it too.

People also search by the short names of instruments (电镜 for 扫描电子显微镜, SEM, XRD): the long
forms in ABBREVIATIONS add their short forms to the index."""
from __future__ import annotations

import re

import sqlalchemy as sa

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
LATIN_WORD = re.compile(r"[0-9a-z]+")
NOT_LETTER = re.compile(r"[^a-z]+")
SEARCHED_FIELDS = ("name_zh", "name_en", "model", "manufacturer")

# long form in a record → the short forms people type for it
ABBREVIATIONS = {
    "电子显微镜": "电镜", "扫描电子显微镜": "扫描电镜 SEM", "透射电子显微镜": "透射电镜 TEM",
    "原子力显微镜": "AFM", "激光扫描共聚焦显微镜": "共聚焦 CLSM",
    "液相色谱-质谱": "液质 LC-MS", "液相色谱-三重四极杆质谱": "液质 LC-MS", "气相色谱-质谱": "气质 GC-MS",
    "高效液相色谱": "HPLC", "超高效液相色谱": "UPLC", "电感耦合等离子体": "ICP",
    "傅里叶变换红外": "FTIR", "X射线衍射": "XRD", "X射线光电子能谱": "XPS", "X射线荧光": "XRF",
    "核磁共振": "NMR", "电子顺磁共振": "EPR", "差示扫描量热": "DSC", "热重分析": "TGA",
    "动态热机械分析": "DMA", "原子吸收": "AAS", "紫外可见": "UV-Vis", "凝胶渗透色谱": "GPC",
    "聚焦离子束": "FIB", "飞行时间质谱": "TOF-MS",
}


def _cjk_tokens(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]


def tokens(text: str) -> list[str]:
    """The tokens of a text, in order, duplicates kept out."""
    text = text.lower()
    found: list[str] = []
    for run in CJK_RUN.findall(text):
        found.extend(_cjk_tokens(run))
    found.extend(LATIN_WORD.findall(CJK_RUN.sub(" ", text)))
    return list(dict.fromkeys(found))


def index_text(*parts: str) -> str:
    """The string stored in instruments.search_text."""
    return " ".join(tokens(" ".join(part for part in parts if part)))


def pinyin_initials(text: str) -> list[str]:
    """The pinyin initials of each run of Chinese characters and, for several runs, of all of them:
    液相色谱-质谱联用仪 → ["yxsp", "zplyy", "yxspzplyy"]."""
    runs = CJK_RUN.findall(text or "")
    if not runs:
        return []
    # pypinyin loads its dictionaries on import, which takes a while: only a process that indexes pays for it
    from pypinyin import Style, lazy_pinyin

    initials = [NOT_LETTER.sub("", "".join(lazy_pinyin(run, style=Style.FIRST_LETTER, errors="ignore")))
                for run in runs]
    if len(runs) > 1:
        initials.append("".join(initials))
    return [found for found in dict.fromkeys(initials) if found]


def short_forms(text: str) -> list[str]:
    """The short forms of the long ones the text contains (ABBREVIATIONS)."""
    return [short for long, short in ABBREVIATIONS.items() if long.lower() in text.lower()]


def instrument_index_text(values: dict) -> str:
    parts = [*(str(values.get(name) or "") for name in SEARCHED_FIELDS),
             *(str(c) for c in values.get("capabilities") or [])]
    text = index_text(*parts, *short_forms(" ".join(parts[:2])))
    extra = [initials for initials in pinyin_initials(str(values.get("name_zh") or ""))
             if initials not in text.split()]
    return " ".join([text, *extra]) if extra else text


def _tsquery(query_tokens: list[str]) -> sa.ColumnElement:
    terms = [f"{t}:*" if LATIN_WORD.fullmatch(t) else t for t in query_tokens]
    return sa.func.to_tsquery("simple", " & ".join(terms))


def _fts_match(query_tokens: list[str]) -> sa.TextClause:
    fts_query = " ".join(f'"{t}"*' if LATIN_WORD.fullmatch(t) else f'"{t}"' for t in query_tokens)
    return sa.text("instrument_search MATCH :fts_query").bindparams(fts_query=fts_query)


def match_clause(dialect: str, query: str) -> tuple[sa.ColumnElement, sa.ColumnElement] | None:
    """(a WHERE clause on instruments, a relevance expression, higher is better), or None for a query
    with no tokens. As every token is indexed once, neither database's rank tells much: the catalogue
    ranks by where the query appears instead (marketplace/catalogue/services.py)."""
    from marketplace.registry.models import Instrument

    query_tokens = tokens(query)
    if not query_tokens:
        return None
    if dialect == "postgresql":
        vector = sa.func.to_tsvector("simple", Instrument.search_text)  # the expression of the GIN index
        tsquery = _tsquery(query_tokens)
        return vector.op("@@")(tsquery), sa.func.ts_rank(vector, tsquery)
    matching = sa.select(sa.column("rowid")).select_from(sa.table("instrument_search")).where(
        _fts_match(query_tokens))
    return Instrument.id.in_(matching), sa.literal(0)


def restrict(stmt: sa.Select, dialect: str, query: str) -> sa.Select | None:
    """A select from instruments kept to those matching the query; None for a query with no tokens.
    On SQLite the FTS5 table is joined, so that the search leads the plan (with `id IN (…)` SQLite
    walks every catalogue instrument instead); on PostgreSQL the GIN index serves the WHERE clause."""
    from marketplace.registry.models import Instrument

    query_tokens = tokens(query)
    if not query_tokens:
        return None
    if dialect == "postgresql":
        vector = sa.func.to_tsvector("simple", Instrument.search_text)
        return stmt.where(vector.op("@@")(_tsquery(query_tokens)))
    fts = sa.table("instrument_search", sa.column("rowid"))
    return stmt.join(fts, fts.c.rowid == Instrument.id).where(_fts_match(query_tokens))
