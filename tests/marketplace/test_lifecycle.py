"""The instrument lifecycle: every allowed move, every refused one, who may, and the audit trail."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.audit import Actor
from core.db import utcnow
from core.errors import Forbidden, RuleBroken
from core.models import AuditEntry
from marketplace.registry import services
from marketplace.registry.models import INSTRUMENT_TRANSITIONS, Instrument, InstrumentState, SharingMode
from marketplace.registry.search import match_clause

S = InstrumentState


def move_to(session, instrument, to, demo_user):
    """Drive the one service that makes each move."""
    admin, bureau = demo_user("platform"), demo_user("bureau")
    actor, bureau_actor = Actor.of(admin, None), Actor.of(bureau, None)
    if to == S.SUBMITTED:
        return services.submit_instrument(session, instrument, admin, actor=actor, now=utcnow())
    if to == S.PUBLISHED and instrument.state == S.MAINTENANCE:
        return services.set_maintenance(session, instrument, admin, actor=actor, on=False)
    if to == S.PUBLISHED:
        return services.publish_instrument(session, instrument, bureau, actor=bureau_actor, now=utcnow())
    if to == S.REJECTED:
        return services.reject_instrument(session, instrument, bureau, actor=bureau_actor, reason="照片不清晰")
    if to == S.MAINTENANCE:
        return services.set_maintenance(session, instrument, admin, actor=actor, on=True)
    if to == S.RETIRED:
        return services.retire_instrument(session, instrument, admin, actor=actor)
    if to == S.DRAFT:
        return services.update_instrument(session, instrument, admin, actor=actor, values={"room": "302"}, now=utcnow())
    raise AssertionError(to)


ALLOWED = [(a, b) for a, targets in INSTRUMENT_TRANSITIONS.items() for b in targets]


@pytest.mark.parametrize("start, to", ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_every_allowed_move_works_and_is_audited(session, create_instrument, demo_user, start, to):
    instrument = create_instrument(state=start)
    move_to(session, instrument, to, demo_user)
    assert instrument.state == to
    entry = session.scalar(select(AuditEntry).where(AuditEntry.subject_type == "instruments",
                                                    AuditEntry.subject_id == instrument.id,
                                                    AuditEntry.action == f"instrument.{to.value}")
                           .order_by(AuditEntry.id.desc()))
    assert entry is not None and entry.before == {"state": start.value}


REFUSED = [(a, b) for a in S for b in (S.SUBMITTED, S.PUBLISHED, S.REJECTED, S.MAINTENANCE, S.RETIRED)
           if b not in INSTRUMENT_TRANSITIONS.get(a, set()) and a != b
           and not (a == S.REJECTED and b == S.SUBMITTED)]  # resubmitting a rejected one passes through draft


@pytest.mark.parametrize("start, to", REFUSED, ids=[f"{a}->{b}" for a, b in REFUSED])
def test_every_other_move_is_refused_with_a_clear_message(session, create_instrument, demo_user, start, to):
    instrument = create_instrument(state=start)
    with pytest.raises(RuleBroken) as refused:
        move_to(session, instrument, to, demo_user)
    assert refused.value.code in ("illegal_transition", "nothing_to_review")
    assert instrument.state == start


def test_only_the_bureau_publishes_and_rejects(session, create_instrument, demo_user):
    instrument = create_instrument(state=S.SUBMITTED)
    admin = demo_user("platform")
    with pytest.raises(Forbidden):
        services.publish_instrument(session, instrument, admin, actor=Actor.of(admin, None), now=utcnow())
    with pytest.raises(Forbidden):
        services.reject_instrument(session, instrument, admin, actor=Actor.of(admin, None), reason="x")


def test_rejection_needs_a_reason(session, create_instrument, demo_user):
    instrument = create_instrument(state=S.SUBMITTED)
    bureau = demo_user("bureau")
    with pytest.raises(RuleBroken):
        services.reject_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), reason="  ")
    assert instrument.state == S.SUBMITTED


def test_editing_a_published_instrument_waits_for_review_while_the_public_record_stays(session, create_instrument,
                                                                                       demo_user):
    instrument = create_instrument(state=S.PUBLISHED)
    admin, bureau = demo_user("platform"), demo_user("bureau")
    services.update_instrument(session, instrument, admin, actor=Actor.of(admin, None),
                               values={"name_zh": "高分辨质谱仪", "hourly_rate_district_enterprise_fen": 45_000},
                               now=utcnow())
    assert instrument.state == S.PUBLISHED and instrument.name_zh == "液相色谱-质谱联用仪"
    assert instrument.pending_changes == {"name_zh": "高分辨质谱仪", "hourly_rate_district_enterprise_fen": 45_000}
    assert ("name_zh", "液相色谱-质谱联用仪", "高分辨质谱仪") in services.review_diff(instrument)
    services.publish_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), now=utcnow())
    assert (instrument.name_zh, instrument.hourly_rate_district_enterprise_fen) == ("高分辨质谱仪", 45_000)
    assert instrument.pending_changes is None


def test_a_published_change_gives_the_fields_their_own_types_and_is_found_by_search(session, create_instrument,
                                                                                    demo_user):
    instrument = create_instrument(state=S.PUBLISHED)
    admin, bureau = demo_user("platform"), demo_user("bureau")
    services.update_instrument(session, instrument, admin, actor=Actor.of(admin, None), now=utcnow(), values={
        "name_zh": "场发射扫描电子显微镜", "sharing_mode": "appointment", "purchased_on": date(2020, 5, 1),
        "category_id": services.category_by_code(session, "0104").id})
    services.publish_instrument(session, instrument, bureau, actor=Actor.of(bureau, None), now=utcnow())
    assert instrument.sharing_mode is SharingMode.APPOINTMENT  # not the string the review kept
    assert instrument.purchased_on == date(2020, 5, 1) and instrument.category.code == "0104"
    where, _rank = match_clause(session.get_bind().dialect.name, "电镜")
    assert session.scalars(select(Instrument.id).where(where)).all() == [instrument.id]


def test_another_platforms_admin_cannot_change_an_instrument(session, create_instrument, demo_user):
    instrument = create_instrument()
    operator = demo_user("operator")
    with pytest.raises(Forbidden):
        services.update_instrument(session, instrument, operator, actor=Actor.of(operator, None), values={"room": "1"},
                                   now=utcnow())


def test_duplicate_model_and_asset_number_on_one_platform_is_refused(session, create_instrument):
    first = create_instrument()
    with pytest.raises(RuleBroken) as refused:
        create_instrument(asset_number=first.asset_number)
    assert refused.value.field == "asset_number"


@pytest.mark.parametrize("query", ["质谱", "色谱", "联用", "thermo", "TSQ", "altis", "农药"])
def test_two_character_chinese_and_latin_prefix_queries_find_the_instrument(session, create_instrument, query):
    instrument = create_instrument(state=S.PUBLISHED)
    where, _rank = match_clause(session.get_bind().dialect.name, query)
    assert instrument.id in session.scalars(select(Instrument.id).where(where)).all()


def test_unrelated_query_finds_nothing(session, create_instrument):
    create_instrument(state=S.PUBLISHED)
    where, _rank = match_clause(session.get_bind().dialect.name, "电镜")
    assert session.scalars(select(Instrument.id).where(where)).all() == []


def test_review_queue_holds_only_what_waits(session, create_instrument, demo_user):
    waiting = create_instrument(state=S.SUBMITTED)
    reviewed = create_instrument(state=S.PUBLISHED)
    retired = create_instrument(state=S.RETIRED)
    admin, bureau = demo_user("platform"), demo_user("bureau")
    services.update_instrument(session, reviewed, admin, actor=Actor.of(admin, None), values={"room": "9"}, now=utcnow())
    services.publish_instrument(session, reviewed, bureau, actor=Actor.of(bureau, None), now=utcnow())
    queued = set(session.scalars(services.review_queue(session, now=utcnow())).all())
    assert waiting in queued and reviewed not in queued and retired not in queued


def test_resubmitting_a_rejected_instrument_clears_the_old_reason(session, create_instrument, demo_user):
    instrument = create_instrument(state=S.REJECTED)
    admin = demo_user("platform")
    services.submit_instrument(session, instrument, admin, actor=Actor.of(admin, None), now=utcnow())
    assert instrument.state == S.SUBMITTED and instrument.review_note is None


def test_a_retired_instrument_takes_no_photos(session, create_instrument, demo_user, tmp_path):
    instrument = create_instrument(state=S.RETIRED)
    admin = demo_user("platform")
    with pytest.raises(RuleBroken) as refused:
        services.add_photo(session, instrument, admin, actor=Actor.of(admin, None),
                           photo=services.PreparedPhoto(b"x", 1, 1), upload_dir=tmp_path)
    assert refused.value.code == "instrument_retired"
