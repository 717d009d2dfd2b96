"""The audit log as people read it: actions, objects and fields in words, amounts in yuan."""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from core.money import format_yuan

EXPORT_ROW_CAP = 50_000  # rows in one XLSX download of the log; narrow the filters for more

# The object of an entry: the subject's table.
SUBJECT_LABELS = {
    "api_tokens": _l("API token"), "booking_rules": _l("Booking rules"), "booking_series": _l("Booking series"),
    "bookings": _l("Booking"), "bureaus": _l("Bureau"), "catalogue_releases": _l("Catalogue release"),
    "enterprises": _l("Enterprise"), "holiday_arrangements": _l("Holiday arrangement"),
    "holiday_days": _l("Holiday calendar day"), "instrument_photos": _l("Instrument photo"), "instruments": _l("Instrument"),
    "job_runs": _l("Job run"), "maintenance_windows": _l("Maintenance window"), "organisations": _l("Organisation"),
    "organisation_changes": _l("Organisation change"),
    "payments": _l("Payment"), "platforms": _l("Platform"), "qualifications": _l("Qualification"),
    "role_grants": _l("Role"), "service_terms": _l("Service terms"), "users": _l("User account"),
    "voucher_applications": _l("Voucher application"), "voucher_attachments": _l("Voucher attachment"),
    "voucher_claims": _l("Voucher claim"), "voucher_ledger_entries": _l("Voucher ledger entry"),
    "voucher_programmes": _l("Voucher programme"), "voucher_related_parties": _l("Related party"),
    "vouchers": _l("Innovation voucher"), "waitlist_entries": _l("Waiting list entry"),
}

# An action is "<noun>.<verb>": the noun names what changed, the verb what happened to it.
ACTION_NOUNS = {
    "api_token": SUBJECT_LABELS["api_tokens"], "booking": SUBJECT_LABELS["bookings"],
    "booking_rules": SUBJECT_LABELS["booking_rules"], "booking_series": SUBJECT_LABELS["booking_series"],
    "bureau": SUBJECT_LABELS["bureaus"], "calendar_feed": _l("Calendar feed"),
    "catalogue_release": SUBJECT_LABELS["catalogue_releases"], "enterprise": SUBJECT_LABELS["enterprises"],
    "holiday_arrangement": SUBJECT_LABELS["holiday_arrangements"], "holiday_day": SUBJECT_LABELS["holiday_days"],
    "instrument": SUBJECT_LABELS["instruments"], "job_run": SUBJECT_LABELS["job_runs"],
    "maintenance_window": SUBJECT_LABELS["maintenance_windows"],
    "organisation_change": SUBJECT_LABELS["organisation_changes"],
    "payment": SUBJECT_LABELS["payments"], "platform": SUBJECT_LABELS["platforms"],
    "qualification": SUBJECT_LABELS["qualifications"], "related_party": SUBJECT_LABELS["voucher_related_parties"],
    "role": SUBJECT_LABELS["role_grants"], "service_terms": SUBJECT_LABELS["service_terms"],
    "user": SUBJECT_LABELS["users"], "voucher": SUBJECT_LABELS["vouchers"],
    "voucher_application": SUBJECT_LABELS["voucher_applications"],
    "voucher_claim": SUBJECT_LABELS["voucher_claims"], "voucher_programme": SUBJECT_LABELS["voucher_programmes"],
    "waitlist_entry": SUBJECT_LABELS["waitlist_entries"],
}
ACTION_VERBS = {
    "requested": _l("requested"), "approved": _l("approved"), "confirmed": _l("confirmed"),
    "in_progress": _l("started (in use)"), "completed": _l("completed"), "rejected": _l("rejected"),
    "cancelled": _l("cancelled"), "canceled": _l("cancelled"), "expired": _l("expired"),
    "no_show": _l("marked no-show"), "created": _l("created"), "updated": _l("updated"), "saved": _l("saved"),
    "reset": _l("reset"), "issued": _l("issued"), "revoked": _l("revoked"), "granted": _l("granted"),
    "submitted": _l("submitted"), "resubmitted": _l("resubmitted"), "returned": _l("returned"),
    "published": _l("published"), "change_submitted": _l("change submitted"),
    "change_published": _l("change published"), "change_rejected": _l("change rejected"),
    "imported": _l("imported"), "photo_added": _l("photo added"), "photo_removed": _l("photo removed"),
    "added": _l("added"), "removed": _l("removed"), "authorised": _l("authorised"), "captured": _l("captured"),
    "refunded": _l("refunded"), "declined": _l("declined"), "failed": _l("failed"),
    "difference_due": _l("difference due"), "orphan_canceled": _l("orphan cancelled"),
    "pending": _l("pending"), "recovered": _l("recovered"), "refund_due": _l("refund due"),
    "started": _l("started"), "transfer_chosen": _l("bank transfer chosen"),
    "transfer_received": _l("bank transfer received"), "declared": _l("declared"),
    "registered": _l("registered"), "verified": _l("verified"), "password_changed": _l("password changed"),
    "password_reset": _l("password reset"), "sessions_ended": _l("sessions ended"), "paid": _l("paid"),
    "platform_suspended": _l("platform suspended"), "waiting": _l("waiting"), "offered": _l("offered"),
    "booked": _l("booked"), "lapsed": _l("lapsed"), "withdrawn": _l("withdrawn"),
    "regenerated": _l("regenerated"), "issue": _l("issued"), "hold": _l("held"), "release": _l("released"),
    "consume": _l("consumed"), "expire": _l("expired"), "void": _l("voided"), "redeem": _l("redeemed"),
    "draft": _l("back to draft"), "maintenance": _l("under maintenance"), "retired": _l("retired"),
}

# Field names of before/after; packages above core add theirs (the instrument form's) with add_field_labels.
FIELD_LABELS: dict[str, Any] = {
    "state": _l("State"), "note": _l("Note"), "reason": _l("Reason"), "role": _l("Role"),
    "user_id": _l("User account"), "organisation_id": _l("Organisation"), "email": _l("E-mail"), "name": _l("Name"),
    "start_at": _l("Start"), "end_at": _l("End"), "price_fen": _l("Price (yuan)"),
    "payable_fen": _l("Payable (yuan)"), "payment_state": _l("Payment state"),
    "cancellation_fee_fen": _l("Cancellation fee (yuan)"), "final_price_fen": _l("Final price (yuan)"),
    "status": _l("Status"), "amount_fen": _l("Amount (yuan)"), "captured_fen": _l("Captured (yuan)"),
    "refunded_fen": _l("Refunded (yuan)"), "intent_id": _l("Gateway payment"),
    "pending_action": _l("Pending gateway call"), "pending_amount_fen": _l("Pending amount (yuan)"),
    "balance_fen": _l("Balance (yuan)"), "held_fen": _l("Held (yuan)"), "consumed_fen": _l("Consumed (yuan)"),
    "face_value_fen": _l("Face value (yuan)"), "old": _l("Before"), "new": _l("Asked for"),
    "day": _l("Date"), "kind": _l("Kind"), "days": _l("Days"), "year": _l("Year"),
}


def add_field_labels(labels: Mapping[str, Any]) -> None:
    FIELD_LABELS.update(labels)


def action_label(action: str) -> str:
    """The action in words; an action without a label shows its code."""
    noun, _dot, verb = action.partition(".")
    if noun in ACTION_NOUNS and verb in ACTION_VERBS:
        return _("%(noun)s %(verb)s", noun=ACTION_NOUNS[noun], verb=ACTION_VERBS[verb])
    return action


def subject_label(subject_type: str, subject_id: int | None) -> str:
    label = str(SUBJECT_LABELS.get(subject_type, subject_type))
    return f"{label} #{subject_id}" if subject_id is not None else label


def field_lines(values: Mapping[str, Any] | None) -> list[str]:
    """before/after as "field: value" lines: amounts (keys ending in _fen) in yuan, text as text."""
    return [f"{FIELD_LABELS.get(key, key)}: {_value(key, value)}" for key, value in (values or {}).items()]


def _value(key: str, value: Any) -> str:
    if key.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
        return format_yuan(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
