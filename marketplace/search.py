"""Full-text search over the catalogue, in Chinese and English, on SQLite (FTS5) and PostgreSQL (tsvector).

Chinese has no spaces, and a two-character query (质谱, 电镜, 光谱) must find 质谱仪 or 扫描电镜. So the
indexed text is a list of tokens: every overlapping pair of characters (bigram) of each run of Chinese
characters, and each Latin word or number in lower case. A query is cut the same way and every token
must match: a Chinese query of any length finds the texts that contain it; a Latin word also matches
as a prefix (so "thermo" finds "ThermoFisher"). Both databases index the same token string."""
from __future__ import annotations

import re

import sqlalchemy as sa

CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
LATIN_WORD = re.compile(r"[0-9a-z]+")
SEARCHED_FIELDS = ("name_zh", "name_en", "model", "manufacturer")


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


def instrument_index_text(values: dict) -> str:
    return index_text(*(str(values.get(name) or "") for name in SEARCHED_FIELDS),
                      *(str(c) for c in values.get("capabilities") or []))


def match_clause(dialect: str, query: str) -> tuple[sa.ColumnElement, sa.ColumnElement] | None:
    """(a WHERE clause on instruments, a relevance expression, higher is better), or None for a query
    with no tokens."""
    from marketplace.models import Instrument

    search_column = Instrument.search_text
    query_tokens = tokens(query)
    if not query_tokens:
        return None
    if dialect == "postgresql":
        terms = [f"{t}:*" if LATIN_WORD.fullmatch(t) else t for t in query_tokens]
        tsquery = sa.func.to_tsquery("simple", " & ".join(terms))
        vector = sa.func.to_tsvector("simple", search_column)
        return vector.op("@@")(tsquery), sa.func.ts_rank(vector, tsquery)
    fts_query = " ".join(f'"{t}"*' if LATIN_WORD.fullmatch(t) else f'"{t}"' for t in query_tokens)
    matching = sa.select(sa.column("rowid")).select_from(sa.table("instrument_search")).where(
        sa.text("instrument_search MATCH :fts_query").bindparams(fts_query=fts_query))
    return Instrument.id.in_(matching), sa.literal(0)
