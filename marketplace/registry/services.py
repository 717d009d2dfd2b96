"""The instrument registry's rules: records, the review lifecycle, photos."""
from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.errors import Forbidden, NotFound, RuleBroken
from core.models import Platform, Role, User
from core.services import administers
from core.states import can_move, move
from marketplace.registry.models import (
    EDITABLE_FIELDS,
    INSTRUMENT_STATE_LABELS,
    INSTRUMENT_TRANSITIONS,
    PUBLIC_FIELDS,
    Instrument,
    InstrumentCategory,
    InstrumentPhoto,
    InstrumentState,
    to_json_value,
)
from marketplace.registry.search import instrument_index_text

MAX_PHOTOS = 8
MAX_PHOTO_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDE = 1600
# Pixels a photo may have, by what its format costs to decode: a JPEG is decoded scaled down to near
# the stored size, a PNG or WebP whole (an RGBA PNG twice, to resize it; a WebP about four times). Each
# stays under 100 MB of memory at its limit.
MAX_PHOTO_PIXELS = {"JPEG": 24_000_000, "PNG": 8_000_000, "WEBP": 6_000_000}
FEE_FIELDS = tuple(name for name in PUBLIC_FIELDS if name.endswith("_fen") and name != "original_value_fen")


# --- who may ----------------------------------------------------------------------------------

def ensure_may_manage(user: User, instrument_or_platform_id: Instrument | int) -> None:
    platform_id = getattr(instrument_or_platform_id, "platform_id", instrument_or_platform_id)
    if not administers(user, platform_id):
        raise Forbidden("forbidden", _("Only the admins of its platform may change this instrument."))


def ensure_bureau(user: User) -> None:
    if not user.has_role(Role.BUREAU_ADMIN):
        raise Forbidden("forbidden", _("Only the bureau reviews instruments."))


def can_see(user: User | None, instrument: Instrument) -> bool:
    """The public sees catalogue instruments; the platform and the bureau see every state."""
    return (instrument.is_in_catalogue or administers(user, instrument.platform_id)
            or (user is not None and user.has_role(Role.BUREAU_ADMIN, Role.AUDITOR)))


def get_instrument(session: Session, instrument_id: int, user: User | None) -> Instrument:
    instrument = session.get(Instrument, instrument_id)
    if instrument is None or not can_see(user, instrument):
        raise NotFound("not_found", _("There is no such instrument."))
    return instrument


# --- values -----------------------------------------------------------------------------------

def list_categories(session: Session) -> list[InstrumentCategory]:
    return list(session.scalars(select(InstrumentCategory).order_by(InstrumentCategory.code)))


def category_choices(session: Session, language: str) -> list[tuple[str, str]]:
    """Every category as (code, name) in code order, for lists that name them (the voucher programmes)."""
    name = InstrumentCategory.name_en if language == "en" else InstrumentCategory.name_zh
    return [(code, label) for code, label in session.execute(
        select(InstrumentCategory.code, name).order_by(InstrumentCategory.code))]


def category_by_code(session: Session, code: str) -> InstrumentCategory | None:
    return session.scalar(select(InstrumentCategory).where(InstrumentCategory.code == code))


def check_values(session: Session, values: dict[str, Any], *, platform_id: int,
                 instrument_id: int | None = None) -> dict[str, str]:
    """The rules a record must meet beyond its shape: errors by field ({} when all is well)."""
    errors: dict[str, str] = {}
    for name in ("name_zh", "model", "manufacturer", "asset_number"):
        if name in values and not str(values[name] or "").strip():
            errors[name] = _("This field is required.")
    if "original_value_fen" in values and (not isinstance(values["original_value_fen"], int)
                                           or values["original_value_fen"] <= 0):
        errors["original_value_fen"] = _("The original value must be an amount above zero.")
    for name in FEE_FIELDS:
        if name in values and (not isinstance(values[name], int) or values[name] < 0):
            errors[name] = _("A fee cannot be negative.")
    if "category_id" in values:
        category = session.get(InstrumentCategory, values["category_id"]) if values["category_id"] else None
        if category is None or category.parent_id is None:
            errors["category_id"] = _("Choose a sub-category.")
    if "capabilities" in values and not all(isinstance(c, str) and c.strip() for c in values["capabilities"]):
        errors["capabilities"] = _("Each capability is a line of text.")
    if {"model", "asset_number"} & set(values) and "asset_number" not in errors:
        duplicate = session.scalar(select(Instrument.id).where(
            Instrument.platform_id == platform_id, Instrument.model == values.get("model"),
            Instrument.asset_number == values.get("asset_number"),
            Instrument.id != (instrument_id or 0)))
        if duplicate is not None:
            errors["asset_number"] = _("This platform has an instrument of this model and asset number already.")
    return errors


def _raise_first(errors: dict[str, str]) -> None:
    if errors:
        field, message = next(iter(errors.items()))
        raise RuleBroken("invalid_instrument", message, field=field, details=errors)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    cleaned = {name: values[name] for name in EDITABLE_FIELDS if name in values}
    for name, value in cleaned.items():
        if isinstance(value, str):
            cleaned[name] = value.strip()
    if "capabilities" in cleaned:
        cleaned["capabilities"] = [c.strip() for c in cleaned["capabilities"] if c and c.strip()]
    return cleaned


def _audit_state(session: Session, actor: Actor, instrument: Instrument, before: InstrumentState,
                 **extra: Any) -> None:
    record_audit(session, actor, f"instrument.{instrument.state.value}", instrument,
                 before={"state": before.value}, after={"state": instrument.state.value, **extra})


def _move(instrument: Instrument, to: InstrumentState) -> None:
    move(instrument, to, INSTRUMENT_TRANSITIONS, INSTRUMENT_STATE_LABELS)


def _reindex(instrument: Instrument) -> None:
    instrument.search_text = instrument_index_text(instrument.public_values())


# --- the platform's work ----------------------------------------------------------------------

def create_instrument(session: Session, platform: Platform, user: User, *, actor: Actor, values: dict[str, Any],
                      submit: bool = False, now: datetime) -> Instrument:
    ensure_may_manage(user, platform.id)
    values = _clean(values)
    _raise_first(check_values(session, values, platform_id=platform.id))
    instrument = Instrument(platform_id=platform.id, **values)
    _reindex(instrument)
    session.add(instrument)
    session.flush()
    record_audit(session, actor, "instrument.created", instrument, after=instrument.public_values())
    if submit:
        submit_instrument(session, instrument, user, actor=actor, now=now)
    return instrument


def update_instrument(session: Session, instrument: Instrument, user: User, *, actor: Actor,
                      values: dict[str, Any], now: datetime) -> Instrument:
    """Drafts change at once (a rejected one goes back to draft); a published instrument keeps its
    public record and the change waits for the bureau's review."""
    ensure_may_manage(user, instrument)
    if instrument.state == InstrumentState.RETIRED:
        raise RuleBroken("instrument_retired", _("A retired instrument cannot be changed."))
    values = _clean(values)
    merged = {name: getattr(instrument, name) for name in EDITABLE_FIELDS} | (instrument.pending_changes or {}) | values
    _raise_first(check_values(session, merged, platform_id=instrument.platform_id, instrument_id=instrument.id))
    current = {name: getattr(instrument, name) for name in EDITABLE_FIELDS}
    changed = {name: value for name, value in values.items() if to_json_value(value) != to_json_value(current[name])}
    if instrument.is_in_catalogue:
        pending = {k: v for k, v in ((instrument.pending_changes or {}) | {k: to_json_value(v) for k, v in values.items()}).items()
                   if to_json_value(current[k]) != v}
        instrument.pending_changes = pending or None
        instrument.pending_since = (instrument.pending_since or now) if pending else None
        session.flush()
        record_audit(session, actor, "instrument.change_submitted", instrument, after={"pending": pending})
        return instrument
    if instrument.state == InstrumentState.REJECTED:
        before = instrument.state
        _move(instrument, InstrumentState.DRAFT)
        _audit_state(session, actor, instrument, before)
    before_values = {k: to_json_value(current[k]) for k in changed}
    for name, value in changed.items():
        setattr(instrument, name, value)
    _reindex(instrument)
    session.flush()
    if changed:
        record_audit(session, actor, "instrument.updated", instrument, before=before_values,
                     after={k: to_json_value(v) for k, v in changed.items()})
    return instrument


def submit_instrument(session: Session, instrument: Instrument, user: User, *, actor: Actor,
                      now: datetime) -> Instrument:
    ensure_may_manage(user, instrument)
    before = instrument.state
    if before == InstrumentState.REJECTED:
        _move(instrument, InstrumentState.DRAFT)
    _move(instrument, InstrumentState.SUBMITTED)
    instrument.submitted_at = now
    instrument.review_note = None  # the earlier rejection is answered by this submission
    session.flush()
    _audit_state(session, actor, instrument, before)
    return instrument


def set_maintenance(session: Session, instrument: Instrument, user: User, *, actor: Actor, on: bool) -> Instrument:
    ensure_may_manage(user, instrument)
    before = instrument.state
    _move(instrument, InstrumentState.MAINTENANCE if on else InstrumentState.PUBLISHED)
    session.flush()
    _audit_state(session, actor, instrument, before)
    return instrument


def retire_instrument(session: Session, instrument: Instrument, user: User, *, actor: Actor) -> Instrument:
    ensure_may_manage(user, instrument)
    before = instrument.state
    _move(instrument, InstrumentState.RETIRED)
    instrument.pending_changes, instrument.pending_since = None, None
    session.flush()
    _audit_state(session, actor, instrument, before)
    return instrument


# --- the bureau's review ----------------------------------------------------------------------

def is_in_review(instrument: Instrument) -> bool:
    return instrument.state == InstrumentState.SUBMITTED or bool(instrument.pending_changes)


def publish_instrument(session: Session, instrument: Instrument, user: User, *, actor: Actor,
                       now: datetime) -> Instrument:
    """Publish a submitted instrument, or apply the reviewed change of a published one."""
    ensure_bureau(user)
    before = instrument.state
    if instrument.state == InstrumentState.SUBMITTED:
        _move(instrument, InstrumentState.PUBLISHED)
        instrument.published_at = now
        instrument.review_note = None
        session.flush()
        _audit_state(session, actor, instrument, before)
        return instrument
    if not instrument.pending_changes:
        raise RuleBroken("nothing_to_review", _("This instrument has nothing waiting for review."))
    pending = instrument.pending_changes
    # checked again: since the change was made, another instrument may have taken its model and asset number
    merged = {name: getattr(instrument, name) for name in EDITABLE_FIELDS} | pending
    _raise_first(check_values(session, merged, platform_id=instrument.platform_id, instrument_id=instrument.id))
    old = {name: to_json_value(getattr(instrument, name)) for name in pending}
    for name, value in pending.items():
        column_type = Instrument.__table__.c[name].type
        setattr(instrument, name, _from_json(column_type, value))
    instrument.pending_changes, instrument.pending_since, instrument.review_note = None, None, None
    _reindex(instrument)
    session.flush()
    record_audit(session, actor, "instrument.change_published", instrument, before=old, after=pending)
    return instrument


def _from_json(column_type: sa.types.TypeEngine, value: Any) -> Any:
    if isinstance(column_type, sa.Date) and isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(column_type, sa.Enum) and column_type.enum_class is not None and value is not None:
        return column_type.enum_class(value)
    return value


def reject_instrument(session: Session, instrument: Instrument, user: User, *, actor: Actor,
                      reason: str) -> Instrument:
    ensure_bureau(user)
    reason = (reason or "").strip()
    if not reason:
        raise RuleBroken("reason_required", _("Give the reason for the rejection."), field="reason")
    before = instrument.state
    if instrument.state == InstrumentState.SUBMITTED:
        _move(instrument, InstrumentState.REJECTED)
        instrument.review_note = reason
        session.flush()
        _audit_state(session, actor, instrument, before, reason=reason)
        return instrument
    if not instrument.pending_changes:
        raise RuleBroken("nothing_to_review", _("This instrument has nothing waiting for review."))
    discarded = instrument.pending_changes
    instrument.pending_changes, instrument.pending_since, instrument.review_note = None, None, reason
    session.flush()
    record_audit(session, actor, "instrument.change_rejected", instrument,
                 before={"pending": discarded}, after={"reason": reason})
    return instrument


def bulk_publish(session: Session, instrument_ids: list[int], user: User, *, actor: Actor,
                 now: datetime) -> list[Instrument]:
    ensure_bureau(user)
    instruments = list(session.scalars(select(Instrument).where(Instrument.id.in_(instrument_ids))))
    if len(instruments) != len(set(instrument_ids)):
        raise RuleBroken("not_found", _("Some of the chosen instruments no longer exist."))
    for instrument in instruments:
        if not is_in_review(instrument):
            raise RuleBroken("nothing_to_review", _("%(name)s has nothing waiting for review.", name=instrument.name_zh))
        publish_instrument(session, instrument, user, actor=actor, now=now)
    return instruments


def bulk_submit(session: Session, instrument_ids: list[int], user: User, *, actor: Actor,
                now: datetime) -> list[Instrument]:
    """Submits every chosen instrument for review, or none: each is submitted (and audited) as on its own."""
    instruments = list(session.scalars(select(Instrument).where(Instrument.id.in_(instrument_ids))
                                       .order_by(Instrument.id).with_for_update()))
    if len(instruments) != len(set(instrument_ids)):
        raise RuleBroken("not_found", _("Some of the chosen instruments no longer exist."))
    for instrument in instruments:
        if instrument.state not in (InstrumentState.DRAFT, InstrumentState.REJECTED):
            raise RuleBroken("not_a_draft", _("%(name)s is not a draft to submit.", name=instrument.name_zh))
        submit_instrument(session, instrument, user, actor=actor, now=now)
    return instruments


def _in_review() -> sa.ColumnElement[bool]:
    """A new instrument submitted, or a published one's change, waiting for the bureau."""
    return sa.or_(Instrument.state == InstrumentState.SUBMITTED, Instrument.pending_changes.is_not(None))


def review_queue(session: Session, *, platform_id: int | None = None, category_code: str | None = None,
                 older_than_days: int | None = None, now: datetime) -> sa.Select:
    waiting_since = sa.func.coalesce(Instrument.pending_since, Instrument.submitted_at)
    stmt = select(Instrument).where(_in_review()).order_by(waiting_since, Instrument.id)
    if platform_id:
        stmt = stmt.where(Instrument.platform_id == platform_id)
    if category_code:
        stmt = stmt.join(InstrumentCategory).where(InstrumentCategory.code.startswith(category_code))
    if older_than_days:
        stmt = stmt.where(waiting_since <= now - timedelta(days=older_than_days))
    return stmt


def count_in_review(session: Session) -> int:
    """How many wait in the review queue: the bureau's to-do."""
    return session.scalar(select(sa.func.count()).select_from(Instrument).where(_in_review()))


def review_diff(instrument: Instrument) -> list[tuple[str, Any, Any]]:
    """(field, published value, proposed value) for every field of the record, asset number included: the
    bureau reviews the whole record. A new instrument has no published value (None)."""
    current = {name: to_json_value(getattr(instrument, name)) for name in EDITABLE_FIELDS}
    if instrument.pending_changes:
        return [(name, value, instrument.pending_changes.get(name, value)) for name, value in current.items()]
    return [(name, None, value) for name, value in current.items()]


def list_platform_instruments(session: Session, platform_id: int, *, state: InstrumentState | None = None,
                              query: str | None = None) -> sa.Select:
    """A platform's instruments, newest change first; query narrows to a name, model or asset number containing it."""
    stmt = select(Instrument).where(Instrument.platform_id == platform_id).order_by(Instrument.updated_at.desc())
    if state is not None:
        stmt = stmt.where(Instrument.state == state)
    if query:
        needle = query.strip()
        stmt = stmt.where(sa.or_(*(column.icontains(needle, autoescape=True) for column in (
            Instrument.name_zh, Instrument.name_en, Instrument.model, Instrument.asset_number))))
    return stmt


def allowed_moves(instrument: Instrument) -> set[InstrumentState]:
    return {to for to in InstrumentState if can_move(instrument, to, INSTRUMENT_TRANSITIONS)}


# --- photos -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PreparedPhoto:
    """An uploaded photo checked and re-encoded, ready to store."""

    jpeg: bytes
    width: int
    height: int


def _too_many_pixels(image_format: str | None) -> RuleBroken:
    """For a photo beyond its format's limit; or, with no format, beyond Pillow's own (far larger) one."""
    jpeg = MAX_PHOTO_PIXELS["JPEG"] // 1_000_000
    if image_format is None:
        message = _("This photo has far too many pixels: at most %(jpeg)d million, as JPEG.", jpeg=jpeg)
    else:
        message = _("A %(format)s photo may have at most %(n)d million pixels: make it smaller, or save it as JPEG "
                    "(up to %(jpeg)d million).", format=image_format, n=MAX_PHOTO_PIXELS[image_format] // 1_000_000,
                    jpeg=jpeg)
    return RuleBroken("photo_too_many_pixels", message, field="photo")


def prepare_photo(data: bytes) -> PreparedPhoto:
    """Accept JPEG, PNG or WebP up to 10 MB and MAX_PHOTO_PIXELS (counted from the header, before any
    pixel is decoded: photo_too_many_pixels); re-encode it as JPEG, at most 1600 px a side, with the
    orientation applied and no EXIF or other metadata. Needs no database: the caller does this before
    its transaction begins."""
    if len(data) > MAX_PHOTO_BYTES:
        raise RuleBroken("photo_too_large", _("A photo may be at most 10 MB."), field="photo")
    not_a_photo = RuleBroken("photo_format", _("Photos must be JPEG, PNG or WebP."), field="photo")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow's own, far larger, limit
            with Image.open(io.BytesIO(data)) as image:
                if image.format not in MAX_PHOTO_PIXELS:
                    raise not_a_photo
                if image.width * image.height > MAX_PHOTO_PIXELS[image.format]:
                    raise _too_many_pixels(image.format)
                # decoded once (a JPEG scaled down by up to 8 as it is decoded), then shrunk in one step,
                # in place: the copies below are of the small picture
                image.draft("RGB", (PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
                image.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE), reducing_gap=None)
                picture = ImageOps.exif_transpose(image).convert("RGB")
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_many_pixels(None) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise not_a_photo from None
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85, optimize=True)  # no exif= → none written
    return PreparedPhoto(buffer.getvalue(), picture.width, picture.height)


def add_photo(session: Session, instrument: Instrument, user: User, *, actor: Actor, photo: PreparedPhoto,
              upload_dir: Path) -> InstrumentPhoto:
    """Store a prepared photo as the instrument's last one (at most MAX_PHOTOS)."""
    ensure_may_manage(user, instrument)
    if instrument.state == InstrumentState.RETIRED:
        raise RuleBroken("instrument_retired", _("A retired instrument cannot be changed."), field="photo")
    if len(instrument.photos) >= MAX_PHOTOS:
        raise RuleBroken("too_many_photos", _("An instrument has at most %(n)d photos.", n=MAX_PHOTOS), field="photo")
    stored_name = f"{instrument.id}-{secrets.token_hex(8)}.jpg"
    target = photo_path(upload_dir, stored_name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(photo.jpeg)
    stored = InstrumentPhoto(stored_name=stored_name, width=photo.width, height=photo.height,
                             position=max((p.position for p in instrument.photos), default=-1) + 1)
    instrument.photos.append(stored)
    session.flush()
    record_audit(session, actor, "instrument.photo_added", instrument, after={"photo": stored_name})
    return stored


def remove_photo(session: Session, photo: InstrumentPhoto, user: User, *, actor: Actor) -> None:
    instrument = photo.instrument
    ensure_may_manage(user, instrument)
    instrument.photos.remove(photo)
    session.flush()
    record_audit(session, actor, "instrument.photo_removed", instrument, before={"photo": photo.stored_name})


def photo_path(upload_dir: Path, stored_name: str) -> Path:
    return upload_dir / "instruments" / stored_name
