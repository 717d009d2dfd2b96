"""Full-text search over the catalogue, in Chinese and English, on SQLite (FTS5) and PostgreSQL (tsvector).

Chinese has no spaces, and a two-character query (质谱, 电镜, 光谱) must find 质谱仪 or 扫描电镜. So the
indexed text is a list of tokens: every overlapping pair of characters (bigram) of each run of Chinese
characters, and each Latin word or number in lower case. A query is cut the same way and every token
must match: a Chinese query of any length finds the texts that contain it; a Latin word also matches
as a prefix (so "thermo" finds "ThermoFisher"). Both databases index the same token string.

The Chinese name also gives the pinyin initials of each of its runs and of the whole name (质谱仪 →
"zpy"), so "zpy" or "smdj" (扫描电镜) typed on a keyboard without an input method finds it too.

People also search by the short names of instruments (电镜 for 扫描电子显微镜, SEM, XRD): the long
forms in ABBREVIATIONS add their short forms to the index.

A query is also expanded by the synonym groups of marketplace.registry.synonyms (expand): a name in it
(蔡司, "mass spectrometry", qPCR) matches what any name of its group matches, so 蔡司 finds ZEISS and
"Zeiss" finds 蔡司. The query is then a conjunction of parts, each part any of its alternatives, each
alternative all of its tokens. The words as typed keep their prefix match; the names the table adds match
whole words only (质谱 adds "ms", which must not find the MSO64B oscilloscope).

A query that finds little may be a typo: closest() finds the name it most likely meant."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from rapidfuzz import fuzz, process, utils

from marketplace.registry.synonyms import MANUFACTURERS, TERMS

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


Token = tuple[str, bool]  # (token, matches as a prefix)
Alternative = tuple[Token, ...]  # all of these tokens
Part = tuple[Alternative, ...]  # any of these alternatives

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = MANUFACTURERS + TERMS
_GROUP_OF: dict[str, tuple[str, ...]] = {name.lower(): group for group in SYNONYM_GROUPS for name in group}
_KINDS = frozenset(TERMS)


def _name_pattern(name: str) -> str:
    """A name as a regular expression: whole words at an end that is a Latin letter or digit."""
    before = r"(?<![0-9a-z])" if LATIN_WORD.fullmatch(name[0]) else ""
    after = r"(?![0-9a-z])" if LATIN_WORD.fullmatch(name[-1]) else ""
    return before + re.escape(name) + after


# the longest name first, so that at one place in a query the longest wins ("gc-ms" rather than "ms")
_SYNONYM = re.compile("|".join(_name_pattern(name) for name in sorted(_GROUP_OF, key=len, reverse=True)))


def _alternative(text: str, *, prefix: bool) -> Alternative:
    return tuple((token, prefix and LATIN_WORD.fullmatch(token) is not None) for token in tokens(text))


def _broadest(*alternatives: Alternative) -> Part:
    """The alternatives less those that ask for more than another one does (卡尔蔡司 when 蔡司 is there)."""
    found = [alt for alt in dict.fromkeys(alternatives) if alt]
    return tuple(alt for alt in found if not any(set(other) < set(alt) for other in found))


def expand(query: str) -> list[Part]:
    """The query as parts that must all match, none for a query without tokens: each name of a synonym
    group in it becomes a part whose alternatives are the group's names, each other token a part alone."""
    text = query.lower()
    parts: list[Part] = []
    pieces: list[str] = []
    last = 0
    for found in _SYNONYM.finditer(text):
        typed = found.group(0)
        pieces.append(text[last:found.start()])
        last = found.end()
        others = (_alternative(name.lower(), prefix=False) for name in _GROUP_OF[typed] if name.lower() != typed)
        parts.append(_broadest(_alternative(typed, prefix=True), *others))
    pieces.append(text[last:])
    rest = [token for piece in pieces for token in tokens(piece)]
    if parts:  # a character left over from a name (室 of 扫描电镜室) is no token the index holds
        rest = [token for token in rest if not (len(token) == 1 and CJK_RUN.fullmatch(token))]
    parts.extend((_alternative(token, prefix=True),) for token in dict.fromkeys(rest))
    return parts


def group_of(query: str) -> tuple[str, ...]:
    """The names of the synonym group that the whole query names (蔡司 → 蔡司, ZEISS, …); none otherwise."""
    return _GROUP_OF.get(" ".join(query.lower().split()), ())


def kind_names(query: str) -> list[str]:
    """For a query that names a kind of instrument (SEM, 质谱, qPCR): the Chinese names of the kind, which
    the Chinese name of an instrument of that kind contains; none for any other query."""
    group = group_of(query)
    return [name.lower() for name in group if CJK_RUN.search(name)] if group in _KINDS else []


def _query_text(parts: list[Part], term: Callable[[Token], str], *, all_of: str, any_of: str) -> str:
    """The parts in a database's query syntax: all_of between parts and between an alternative's tokens,
    any_of between alternatives."""
    return all_of.join("(" + any_of.join("(" + all_of.join(map(term, alt)) + ")" for alt in part) + ")"
                       for part in parts)


def _tsquery(parts: list[Part]) -> sa.ColumnElement:
    text = _query_text(parts, lambda token: f"{token[0]}:*" if token[1] else token[0], all_of=" & ", any_of=" | ")
    return sa.func.to_tsquery("simple", text)


def _fts_match(parts: list[Part]) -> sa.TextClause:
    text = _query_text(parts, lambda token: f'"{token[0]}"*' if token[1] else f'"{token[0]}"',
                       all_of=" AND ", any_of=" OR ")
    return sa.text("instrument_search MATCH :fts_query").bindparams(fts_query=text)


def match_clause(dialect: str, query: str) -> tuple[sa.ColumnElement, sa.ColumnElement] | None:
    """(a WHERE clause on instruments, a relevance expression, higher is better), or None for a query
    with no tokens. As every token is indexed once, neither database's rank tells much: the catalogue
    ranks by where the query appears instead (marketplace/catalogue/services.py)."""
    from marketplace.registry.models import Instrument

    parts = expand(query)
    if not parts:
        return None
    if dialect == "postgresql":
        vector = sa.func.to_tsvector("simple", Instrument.search_text)  # the expression of the GIN index
        tsquery = _tsquery(parts)
        return vector.op("@@")(tsquery), sa.func.ts_rank(vector, tsquery)
    matching = sa.select(sa.column("rowid")).select_from(sa.table("instrument_search")).where(_fts_match(parts))
    return Instrument.id.in_(matching), sa.literal(0)


def restrict(stmt: sa.Select, dialect: str, query: str) -> sa.Select | None:
    """A select from instruments kept to those matching the query; None for a query with no tokens.
    On SQLite the FTS5 table is joined, so that the search leads the plan (with `id IN (…)` SQLite
    walks every catalogue instrument instead); on PostgreSQL the GIN index serves the WHERE clause."""
    from marketplace.registry.models import Instrument

    parts = expand(query)
    if not parts:
        return None
    if dialect == "postgresql":
        vector = sa.func.to_tsvector("simple", Instrument.search_text)
        return stmt.where(vector.op("@@")(_tsquery(parts)))
    fts = sa.table("instrument_search", sa.column("rowid"))
    return stmt.join(fts, fts.c.rowid == Instrument.id).where(_fts_match(parts))


# --- did you mean ---------------------------------------------------------------------------------
SUGGEST_AT_SCORE = 80  # rapidfuzz's ratio (0 to 100) from which a name is taken for what the query meant


_CHINESE_THEN_LATIN = re.compile(r"(.*[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])\s+(.*[0-9A-Za-z].*)")


def maker_names(maker: str) -> tuple[str, ...]:
    """A manufacturer's Chinese and Latin names where its record gives both (GE 医疗 GE HealthCare →
    GE 医疗, GE HealthCare); otherwise its one name."""
    both = _CHINESE_THEN_LATIN.fullmatch(maker.strip())
    return (both.group(1), both.group(2)) if both else (maker,)


def suggestion_names(models: Iterable[str], manufacturers: Iterable[str]) -> tuple[str, ...]:
    """What a query may have meant: the models and manufacturers (whole, and their Chinese and Latin
    names: maker_names) and every name of the synonym groups."""
    names: dict[str, None] = dict.fromkeys(models)
    for maker in manufacturers:
        names.update(dict.fromkeys((maker, *maker_names(maker))))
    for group in SYNONYM_GROUPS:
        names.update(dict.fromkeys(group))
    return tuple(name for name in names if name)


def closest(query: str, names: Sequence[str]) -> str | None:
    """The name the query most likely misspells (a letter or two off, in any case), or None: none is
    that close, or the query is one of the names already."""
    found = process.extractOne(query, names, scorer=fuzz.ratio, processor=utils.default_process,
                               score_cutoff=SUGGEST_AT_SCORE)
    if found is None or utils.default_process(found[0]) == utils.default_process(query):
        return None
    return found[0]
