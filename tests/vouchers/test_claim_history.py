"""A claim's history: every step (filed, returned with its reasons and lines, resubmitted, approved, paid)
with who took it and when, kept across any number of return and resubmit rounds, on the claim's page for
each reader and in the API."""
from __future__ import annotations

from datetime import timedelta

import pytest

from core.audit import Actor
from core.clock import to_local
from core.db import utcnow
from tests.marketplace.conftest import create_instrument, monday_at  # noqa: F401  (fixtures)
from tests.vouchers.conftest import page_of
from tests.vouchers.test_claims import instrument, platform, served_on, voucher  # noqa: F401  (fixtures)
from vouchers.claims import services as claims
from vouchers.models import Claim, ClaimState


def acting(user) -> Actor:
    return Actor.of(user, "127.0.0.1")


@pytest.fixture
def twice_returned(session, demo_user, platform, instrument, voucher, serve_booking, monday_at):
    """A claim of four uses: filed, two lines returned, resubmitted, one more returned, resubmitted, approved.
    Returns the claim and its bookings in the order of their lines."""
    bookings = [serve_booking(voucher, instrument, monday_at(hour, weeks=weeks))
                for weeks in (-2, -1) for hour in (9, 14)]
    admin, bureau = demo_user("platform"), demo_user("bureau")
    now = utcnow() + timedelta(weeks=6)
    claim = claims.create_provider_claim(
        session, actor=acting(admin), user=admin, platform_id=platform.id, period_start=served_on(bookings[0]),
        period_end=served_on(bookings[-1]), declaration_accepted=True, now=now)
    line = {item.booking_id: item.id for item in claim.lines}
    claims.return_claim(session, claim, actor=acting(bureau), user=bureau, now=now, note="两项记录有误",
                        line_reasons={line[bookings[1].id]: "时间对不上", line[bookings[3].id]: "无使用记录"})
    claims.resubmit_claim(session, claim, actor=acting(admin), user=admin, declaration_accepted=True, now=now)
    claims.return_claim(session, claim, actor=acting(bureau), user=bureau, now=now,
                        line_reasons={line[bookings[2].id]: "金额不符"})
    claims.resubmit_claim(session, claim, actor=acting(admin), user=admin, declaration_accepted=True, now=now)
    claims.approve_claim(session, claim, actor=acting(bureau), user=bureau, now=now, note="同意")
    session.commit()
    return claim, bookings


def expected(demo_user, bookings) -> list[tuple]:
    admin, bureau = demo_user("platform").name, demo_user("bureau").name
    return [("submitted", admin, None, []),
            ("returned", bureau, "两项记录有误", [(bookings[1].id, "时间对不上"), (bookings[3].id, "无使用记录")]),
            ("resubmitted", admin, None, [(bookings[1].id, "时间对不上"), (bookings[3].id, "无使用记录")]),
            ("returned", bureau, None, [(bookings[2].id, "金额不符")]),
            ("resubmitted", admin, None, [(bookings[2].id, "金额不符")]),
            ("approved", bureau, "同意", [])]


def test_the_history_keeps_every_round_of_returns_with_their_reasons_and_people(session, demo_user, twice_returned):
    claim, bookings = twice_returned
    history = claims.claim_history(session, claim)
    assert [(step.step, step.actor_name, step.note, [(line.booking_id, line.reason) for line in step.lines])
            for step in history] == expected(demo_user, bookings)
    assert claim.state == ClaimState.APPROVED and [line.booking_id for line in claim.lines] == [bookings[0].id]
    assert [step.total_fen for step in history] == [160_000, None, 80_000, None, 40_000, 40_000]
    assert [step.at for step in history] == sorted(step.at for step in history)


@pytest.mark.parametrize("reader", ["platform", "bureau", "finance", "auditor"])
def test_the_claim_page_shows_the_history_to_the_claimant_and_the_readers(session, demo_user, login_as,
                                                                        twice_returned, reader):
    claim, bookings = twice_returned
    page = page_of(login_as(reader).get(f"/voucher-claims/{claim.id}"))
    steps = page.all("claim-step")
    assert [step["data-step"] for step in steps] == [item[0] for item in expected(demo_user, bookings)]
    assert [" ".join(actor["text"].split()) for actor in page.all("step-actor")] == [
        item[1] for item in expected(demo_user, bookings)]
    assert [(int(line["data-booking"]), line["text"].split(": ")[-1]) for line in page.all("step-line")] == [
        line for item in expected(demo_user, bookings) for line in item[3]]
    assert [note["text"] for note in page.all("step-note")] == ["两项记录有误", "同意"]
    history = claims.claim_history(session, claim)
    assert to_local(history[0].at).strftime("%Y-%m-%d %H:%M") in steps[0]["text"]  # Asia/Shanghai time
    assert [" ".join(step["text"].split()).split(" · ")[0] for step in steps] == [
        "兑付申请已提交", "已退回", "已重新提交", "已退回", "已重新提交", "已批准"]


def test_the_api_answers_a_claim_with_its_history(session, demo_user, api_as, twice_returned):
    claim, bookings = twice_returned
    answer = api_as("platform").get(f"/api/v1/voucher-claims/{claim.id}")
    assert answer.status_code == 200
    body = answer.json
    assert (body["id"], body["state"], body["total_fen"]) == (claim.id, "approved", 40_000)
    assert [line["booking_id"] for line in body["lines"]] == [bookings[0].id]
    assert [(step["step"], step["actor_name"], step["note"],
             [(line["booking_id"], line["reason"]) for line in step["lines"]]) for step in body["history"]] == [
        *expected(demo_user, bookings)]
    assert all(step["at"].endswith("+08:00") for step in body["history"])
    assert body["history"][1]["actor_id"] == demo_user("bureau").id
    assert api_as("auditor").get(f"/api/v1/voucher-claims/{claim.id}").json["history"] == body["history"]
    missing = api_as("enterprise").get(f"/api/v1/voucher-claims/{claim.id}")  # not the enterprise's claim
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert api_as("bureau").get("/api/v1/voucher-claims/999999999").status_code == 404
    assert api_as(None).get(f"/api/v1/voucher-claims/{claim.id}").status_code == 401
    assert session.get(Claim, claim.id).state == ClaimState.APPROVED
    spec = api_as(None).get("/api/v1/openapi.json").json
    answered = spec["paths"]["/api/v1/voucher-claims/{claim_id}"]["get"]["responses"]["200"]
    assert answered["content"]["application/json"]["schema"]["$ref"].endswith("/ClaimDetailOut")
    assert {"step", "at", "actor_name", "note", "lines"} <= set(spec["components"]["schemas"]["ClaimStepOut"]["properties"])
    assert "history" in spec["components"]["schemas"]["ClaimDetailOut"]["required"]
