"""The dashboard's to-do counts: each queue a role works through, counted and linked to the queue;
the bureau's instruments, applications, claims and organisation changes to review, finance's claims to pay; and the audit
log in the navigation of everyone who may read it."""
from __future__ import annotations

from core.db import utcnow
from marketplace.registry.models import InstrumentState
from tests.vouchers.conftest import page_of
from tests.vouchers.test_claims import (  # noqa: F401  (fixtures)
    actor,
    create_instrument,
    instrument,
    monday_at,
    platform,
    provider_claim,
    served_on,
    voucher,
)
from vouchers.claims import services as claims


def todos(client) -> dict[str, tuple[int, str]]:
    """Each to-do counter on the dashboard: its queue's endpoint → (the count shown, the link)."""
    page = page_of(client.get("/dashboard"))
    return {item["data-endpoint"]: (int(item["text"].split()[-1]), item["href"]) for item in page.all("todo")}


def test_the_bureau_sees_each_queue_counted_and_linked(session, demo_user, login_as, create_instrument, apply_for,
                                                        platform, instrument, voucher, serve_booking, monday_at):
    bureau = login_as("bureau")
    before = todos(bureau)
    assert set(before) == {"marketplace.review_queue", "vouchers.applications", "voucher_claims.to_review",
                           "core.organisation_changes"}
    submitted = create_instrument(state=InstrumentState.SUBMITTED)
    apply_for()
    use = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    provider_claim(session, demo_user("platform"), platform, served_on(use), served_on(use))
    after = todos(bureau)
    assert {endpoint: count - before[endpoint][0] for endpoint, (count, _link) in after.items()} == {
        "marketplace.review_queue": 1, "vouchers.applications": 1, "voucher_claims.to_review": 1,
        "core.organisation_changes": 0}
    assert {endpoint: link for endpoint, (_count, link) in after.items()} == {
        "marketplace.review_queue": "/review", "vouchers.applications": "/voucher-applications?state=submitted",
        "voucher_claims.to_review": "/voucher-claims/to-review", "core.organisation_changes": "/organisation-changes"}
    queue = bureau.get("/review")
    assert queue.status_code == 200 and f'href="/review/{submitted.id}"' in queue.get_data(as_text=True)
    for _count, link in after.values():
        assert bureau.get(link).status_code == 200


def test_finance_sees_the_claims_to_pay_and_reaches_the_audit_log(session, demo_user, login_as, platform, instrument,
                                                                  voucher, serve_booking, monday_at):
    finance = login_as("finance")
    [(before, link)] = todos(finance).values()
    assert link == "/voucher-claims/to-pay"
    use = serve_booking(voucher, instrument, monday_at(9, weeks=-1))
    claim = provider_claim(session, demo_user("platform"), platform, served_on(use), served_on(use))
    assert todos(finance) == {"voucher_claims.to_pay": (before, link)}  # submitted: not yet the finance's
    bureau = demo_user("bureau")
    claims.approve_claim(session, claim, actor=actor(bureau), user=bureau, now=utcnow())
    assert todos(finance) == {"voucher_claims.to_pay": (before + 1, link)}
    assert finance.get(link).status_code == 200
    dashboard = finance.get("/dashboard").get_data(as_text=True)
    assert 'href="/audit"' in dashboard and finance.get("/audit").status_code == 200


def test_the_auditor_reaches_the_audit_log_and_people_without_queues_see_no_to_do_block(login_as):
    auditor = login_as("auditor").get("/dashboard").get_data(as_text=True)
    assert 'href="/audit"' in auditor and 'data-testid="todos"' not in auditor
    enterprise = login_as("enterprise").get("/dashboard").get_data(as_text=True)
    assert 'data-testid="todos"' not in enterprise and 'href="/audit"' not in enterprise
