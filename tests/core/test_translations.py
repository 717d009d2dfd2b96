"""The zh_CN catalogue is complete and sound, checked against a fresh extraction.

No database: these tests use none of the conftest fixtures that start servers. The page test builds
its own app on an in-memory SQLite database it never touches (the home and login pages are public).
"""
from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
PO_PATH = ROOT / "translations" / "zh_CN" / "LC_MESSAGES" / "messages.po"
MO_PATH = PO_PATH.with_suffix(".mo")

# As babel.cfg and `make babel-extract` (-k _l -k lazy_gettext, --ignore-dirs='.* _* tests instance').
METHOD_MAP = [("**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
SKIPPED_DIRS = {"tests", "instance"}

# %(name)s, %(n)d, %s, %5.2f …; "%%" is a literal percent sign, not a placeholder.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[-#0+]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?"
                         r"(?P<type>[diouxXeEfFgGcrsa%])")
CJK = r"\u3400-\u4dbf\u4e00-\u9fff"
# A half-width mark right after a Chinese character: Chinese sentences take ，。：；？！
HALF_WIDTH_AFTER_CJK = re.compile(rf"[{CJK}][,.:;?!]")
ENGLISH_WORD = re.compile(r"[A-Za-z][a-z]{2,}")  # a word, not an acronym such as API
# Msgids whose zh_CN text is rightly the same as the English (none yet); add with a reason.
SAME_IN_CHINESE: set[str] = set()


def _directory_filter(dirpath: str) -> bool:
    name = os.path.basename(dirpath)
    return not (name.startswith((".", "_")) or name in SKIPPED_DIRS)


def _msgid(message: str | tuple[str, ...]) -> str:
    return message[0] if isinstance(message, tuple) else message


@pytest.fixture(scope="module")
def source_msgids() -> dict[tuple[str, str | None], str]:
    """Every (msgid, context) in the source tree now → the first place it occurs (for the failure message)."""
    found: dict[tuple[str, str | None], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(ROOT), METHOD_MAP, keywords=KEYWORDS, directory_filter=_directory_filter):
        msgid = _msgid(message)
        if msgid:
            found.setdefault((msgid, context), f"{filename}:{lineno}")
    assert len(found) > 50, "the extraction found almost nothing: is the method map right?"
    return found


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    with PO_PATH.open("rb") as f:
        return read_po(f, locale="zh_CN")


def _translations(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


def _placeholders(text: str) -> list[str]:
    """Named placeholders as a sorted list (order may change in translation); positional ones in order."""
    found = [m for m in PLACEHOLDER.finditer(text) if m.group("type") != "%"]
    named = sorted(f"%({m.group('name')}){m.group('type')}" for m in found if m.group("name") is not None)
    positional = [f"%{m.group('type')}" for m in found if m.group("name") is None]
    return named + positional


def _untranslated(source_msgids: dict[tuple[str, str | None], str], catalog: Catalog) -> list[str]:
    """Source msgids missing from the catalogue, fuzzy or with an empty msgstr (obsolete entries count as missing)."""
    problems = []
    for (msgid, context), where in sorted(source_msgids.items(), key=lambda item: item[1]):
        message = catalog.get(msgid, context=context)
        if message is None:
            problems.append(f"{where}: not in messages.po (run `make babel-update`): {msgid!r}")
        elif message.fuzzy:
            problems.append(f"{where}: fuzzy: {msgid!r}")
        elif not all(text.strip() for text in _translations(message)):
            problems.append(f"{where}: no translation: {msgid!r}")
    return problems


def test_every_msgid_in_the_source_has_a_chinese_translation(source_msgids, catalog):
    problems = _untranslated(source_msgids, catalog)
    assert not problems, f"{len(problems)} msgid(s) lack a zh_CN translation:\n" + "\n".join(problems)


def test_the_check_finds_fuzzy_empty_and_missing_entries_and_ignores_obsolete_ones():
    po = io.BytesIO('''msgid ""
msgstr "Content-Type: text/plain; charset=UTF-8\\n"

msgid "Bookings"
msgstr "预约"

#, fuzzy
msgid "Waiting"
msgstr "等待中"

msgid "Pages"
msgstr ""

msgctxt "column"
msgid "Actions"
msgstr "操作"

#~ msgid "Operator"
#~ msgstr "操作员"

#~ msgid "Old words"
#~ msgstr ""
'''.encode())
    catalog = read_po(po, locale="zh_CN")
    source = {("Bookings", None): "a:1", ("Waiting", None): "a:2", ("Pages", None): "a:3",
              ("Actions", "column"): "a:4", ("Actions", None): "a:5", ("Operator", None): "a:6"}
    assert _untranslated(source, catalog) == [
        "a:2: fuzzy: 'Waiting'", "a:3: no translation: 'Pages'",
        "a:5: not in messages.po (run `make babel-update`): 'Actions'",
        "a:6: not in messages.po (run `make babel-update`): 'Operator'"]


def test_the_catalogue_has_no_fuzzy_or_copied_entries(catalog):
    problems = []
    for message in catalog:
        if not message.id:
            continue
        msgid = _msgid(message.id)
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        for text in _translations(message):
            if text and text == msgid and ENGLISH_WORD.search(text) and msgid not in SAME_IN_CHINESE:
                problems.append(f"English copied as the translation: {msgid!r}")
    assert not problems, "\n".join(problems)


# The glossary (docs/glossary.md) as (English words, Chinese terms): a msgid with the English as a whole word
# (placeholders removed) is translated with one of the Chinese terms. Words with a second everyday sense
# ("hold", "release", "category" of an organisation…) are left out: no honest check is possible for them.
GLOSSARY: list[tuple[str, tuple[str, ...]]] = [
    (r"operators?", ("操作员",)),
    (r"bookings?", ("预约",)),
    (r"(?:innovation )?vouchers?", ("创新券",)),
    (r"platforms?", ("平台",)),
    (r"claims?", ("兑付", "申请")),  # 申请 alone once the page is about a redemption claim
    (r"instruments?", ("仪器",)),
    (r"waitlist", ("候补",)),
    (r"audit log", ("审计日志",)),
    (r"programmes?", ("计划",)),
    (r"ledger", ("流水",)),
    (r"enterprises?", ("企业",)),
    (r"experts?", ("专家",)),
    (r"bureau", ("局",)),
    (r"qualifications?|qualified", ("上机资格", "资质")),
    (r"maintenance", ("维护",)),
    (r"check(?:ed|s)? in", ("签到",)),
    (r"check(?:ed|s)? out", ("签退",)),
    (r"service terms", ("服务条款",)),
    (r"categor(?:y|ies)|sub-categor(?:y|ies)", ("分类", "小类")),
    (r"asset number", ("资产编号",)),
    (r"original value", ("原值",)),
    (r"no-show", ("爽约",)),
    (r"refund(?:s|ed)?", ("退款",)),
    (r"pool", ("资金池",)),
    (r"redemption|redeem(?:ed)?", ("兑付",)),
    (r"consumed?", ("核销",)),
    (r"introducer", ("引进责任主体",)),
    (r"credit code", ("信用代码",)),
    (r"sample requirements", ("样品要求",)),
    (r"sharing mode", ("共享方式",)),
    (r"(?:bank )?transfer", ("转账",)),
    (r"cancellation fees?", ("取消费", "违约金")),
    (r"open hours", ("开放时间",)),
    (r"actual controller", ("实际控制人",)),
    (r"legal representative", ("法定代表人",)),
    (r"holiday arrangements?", ("放假调休",)),
    (r"make-up working days?", ("调休上班", "调休工作日")),
    (r"holiday calendar", ("节假日日历",)),
]
# Fixed names that carry a glossary word in English but not in Chinese: removed from the msgid before the check.
GLOSSARY_PHRASES = re.compile(
    r"the platform's own staff"  # the user type 本单位人员
    r"|by appointment with the platform",  # the sharing mode 预约共享
    re.IGNORECASE)


def test_each_glossary_term_is_translated_as_the_glossary_says(catalog):
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        english = GLOSSARY_PHRASES.sub(" ", PLACEHOLDER.sub(" ", " ".join(ids)))
        for words, chinese in GLOSSARY:
            if not re.search(rf"\b(?:{words})\b", english, re.IGNORECASE):
                continue
            for text in _translations(message):
                if not any(term in text for term in chinese):
                    problems.append(f"{ids[0]!r} → {text!r}: {words!r} is {' or '.join(chinese)}")
    assert not problems, "translated against docs/glossary.md:\n" + "\n".join(problems)


def test_the_glossary_list_matches_the_glossary_document():
    """Every Chinese term the check uses is written in docs/glossary.md."""
    document = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    missing = sorted({term for _words, chinese in GLOSSARY for term in chinese if term not in document})
    assert not missing, f"add to docs/glossary.md: {missing}"


def test_placeholders_of_each_translation_match_the_msgid(catalog):
    problems = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        expected = _placeholders(ids[-1])
        if isinstance(message.id, tuple) and _placeholders(ids[0]) != expected:
            expected = None  # singular and plural differ ("one file" / "%(n)d files"): check names only
        for text in _translations(message):
            if not text:
                continue
            got = _placeholders(text)
            if expected is None:
                if not set(got) <= set(_placeholders(ids[-1])) | set(_placeholders(ids[0])):
                    problems.append(f"{ids[0]!r}: {got} → {text!r}")
            elif got != expected:
                problems.append(f"{ids[0]!r}: expected {expected}, got {got} in {text!r}")
    assert not problems, "placeholders differ:\n" + "\n".join(problems)


def test_chinese_sentences_use_full_width_punctuation(catalog):
    problems = []
    for message in catalog:
        if not message.id:
            continue
        for text in _translations(message):
            without_placeholders = PLACEHOLDER.sub("X", text or "")
            if HALF_WIDTH_AFTER_CJK.search(without_placeholders):
                problems.append(f"{_msgid(message.id)!r} → {text!r}")
    assert not problems, "use ，。：；？！ after Chinese text:\n" + "\n".join(problems)


def _compile_if_stale() -> None:
    """`make test` compiles with pybabel first; this makes a bare `pytest` work too."""
    if MO_PATH.exists() and MO_PATH.stat().st_mtime >= PO_PATH.stat().st_mtime:
        return
    with PO_PATH.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    fd, tmp = tempfile.mkstemp(dir=MO_PATH.parent, suffix=".mo.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, MO_PATH)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@pytest.fixture(scope="module")
def page_app() -> Flask:
    """No app context held open here: each request must get its own `g` (the chosen language lives there)."""
    from config import TestingConfig
    from core.app import create_app

    _compile_if_stale()
    return create_app(TestingConfig, SQLALCHEMY_DATABASE_URI="sqlite://")


@pytest.mark.parametrize(("path", "chinese", "english"), [
    ("/", ["登录", "企业注册", "柯桥科研仪器共享平台"], ["Log in", "Register your enterprise"]),
    ("/login", ["电子邮箱", "忘记密码？"], ["E-mail", "Forgot your password?"]),  # lazy form labels too
])
def test_pages_render_in_chinese_by_default_and_in_english_on_request(page_app, path, chinese, english):
    response = page_app.test_client().get(path)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'lang="zh-CN"' in html
    for text in chinese:  # Babel calls zh_CN "zh_Hans_CN": translations/zh_Hans_CN links to zh_CN
        assert text in html, f"{text!r} missing: is the zh_CN catalogue compiled and found?"
    assert "Log in" not in html

    response = page_app.test_client().get(f"{path}?lang=en")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'lang="en"' in html
    for text in english:
        assert text in html
    assert "登录" not in html
