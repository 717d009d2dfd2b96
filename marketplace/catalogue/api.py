"""Marketplace API: the public catalogue. Anyone may search; the platform's admins and the bureau may also
read their instruments in other states by sending their bearer token."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import current_app, url_for
from flask_babel import gettext as _

from core.api import page_of, text
from core.auth import current_principal, public
from core.extensions import current_language, db
from core.inputs import MAX_ID, MAX_PAGE
from core.models import Industry
from core.money import MAX_FEN
from marketplace.blueprints import api_bp as bp
from marketplace.booking.api import check_range, instant
from marketplace.catalogue import services as catalogue
from marketplace.catalogue.services import MAX_PER_PAGE, CatalogueSort
from marketplace.registry import services
from marketplace.registry.models import Instrument, InstrumentState, SharingMode, UserType


class InstrumentQuery(ma.Schema):
    q = text(max_length=200, load_default=None,
             metadata={"description": "Keywords: Chinese or English name, model, manufacturer, capabilities; "
                                    "a manufacturer or a term (SEM, qPCR, 质谱) also finds its other names"})
    category = text(max_length=4, load_default=None,
                    metadata={"description": "A category code: first level (\"01\") or second (\"0101\")"})
    platform_id = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1, max=MAX_ID))
    industry = ma.fields.Enum(Industry, by_value=True, load_default=None,
                              metadata={"description": "An industry of the owning platform"})
    large = ma.fields.Boolean(load_default=None, metadata={
        "description": "true: only large instruments (original value at or above the district's line); "
                       "false: only the others"})
    sharing_mode = ma.fields.Enum(SharingMode, by_value=True, load_default=None)
    price_min = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0, max=MAX_FEN), metadata={
        "description": "Lowest hourly rate for district enterprises, in fen"})
    price_max = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0, max=MAX_FEN), metadata={
        "description": "Highest hourly rate for district enterprises, in fen"})
    available_from = instant("Free from (with available_to): only published instruments open for the whole "
                             "time, by their weekly hours and public holidays, that no booking or maintenance "
                             "takes", load_default=None)
    available_to = instant("Free until (exclusive; with available_from, at most 62 days after it)",
                           load_default=None)
    sort = ma.fields.Enum(CatalogueSort, by_value=True, load_default=CatalogueSort.RELEVANCE, metadata={
        "description": "relevance (with q; newest without), name, price (lowest first), newest"})
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PER_PAGE))

    @ma.validates_schema
    def free_time_is_a_range(self, data: dict, **_kwargs: Any) -> None:
        start, end = data.get("available_from"), data.get("available_to")
        if (start is None) != (end is None):
            raise ma.ValidationError(_("Give both available_from and available_to, or neither."),
                                     "available_to" if end is None else "available_from")
        check_range(start, end, end_field="available_to")


class CategoryOut(ma.Schema):
    code = ma.fields.String(required=True)
    name_zh = ma.fields.String(required=True)
    name_en = ma.fields.String(required=True)


class PlatformRefOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class FeeOut(ma.Schema):
    setup_fee_fen = ma.fields.Integer(required=True)
    hourly_rate_fen = ma.fields.Integer(required=True)


class FeesOut(ma.Schema):
    own_staff = ma.fields.Nested(FeeOut, required=True)
    district_enterprise = ma.fields.Nested(FeeOut, required=True)
    other = ma.fields.Nested(FeeOut, required=True)


class LocationOut(ma.Schema):
    building = ma.fields.String(required=True)
    room = ma.fields.String(required=True)


class ContactOut(ma.Schema):
    name = ma.fields.String(required=True)
    phone = ma.fields.String(required=True)
    email = ma.fields.String(required=True)


class InstrumentOut(ma.Schema):
    """An instrument's public record. Money in fen."""

    id = ma.fields.Integer(required=True)
    name_zh = ma.fields.String(required=True)
    name_en = ma.fields.String(required=True)
    model = ma.fields.String(required=True)
    manufacturer = ma.fields.String(required=True)
    country_of_origin = ma.fields.String(required=True)
    category = ma.fields.Nested(CategoryOut, required=True)
    platform = ma.fields.Nested(PlatformRefOut, required=True)
    original_value_fen = ma.fields.Integer(required=True)
    is_large = ma.fields.Boolean(required=True)
    sharing_mode = ma.fields.Enum(SharingMode, by_value=True, required=True)
    state = ma.fields.Enum(InstrumentState, by_value=True, required=True)
    fees = ma.fields.Nested(FeesOut, required=True)
    description = ma.fields.String(required=True)
    capabilities = ma.fields.List(ma.fields.String(), required=True)
    sample_requirements = ma.fields.String(required=True)
    location = ma.fields.Nested(LocationOut, required=True)
    contact = ma.fields.Nested(ContactOut, required=True)
    photos = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "URLs of the photos"})
    published_at = ma.fields.AwareDateTime(allow_none=True, required=True)

    @ma.pre_dump
    def to_record(self, instrument: Instrument, **_kwargs: Any) -> dict[str, Any]:
        fees = {}
        for user_type in UserType:
            setup_fee_fen, hourly_rate_fen = instrument.fee(user_type)
            fees[user_type.value] = {"setup_fee_fen": setup_fee_fen, "hourly_rate_fen": hourly_rate_fen}
        return {
            **{name: getattr(instrument, name) for name in (
                "id", "name_zh", "name_en", "model", "manufacturer", "country_of_origin", "original_value_fen",
                "sharing_mode", "state", "description", "sample_requirements", "published_at", "category",
                "platform")},
            "capabilities": list(instrument.capabilities or []),
            "is_large": catalogue.is_large(instrument, line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"]),
            "fees": fees,
            "location": {"building": instrument.building, "room": instrument.room},
            "contact": {"name": instrument.contact_name, "phone": instrument.contact_phone,
                        "email": instrument.contact_email},
            "photos": [url_for("marketplace.instrument_photo", stored_name=photo.stored_name, _external=True)
                       for photo in instrument.photos],
        }


class InstrumentPageOut(page_of(InstrumentOut)):
    did_you_mean = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "For a search that found fewer than three instruments: the model, manufacturer or "
                       "term its q most likely misspells (search again with it as q), or null"})


@bp.route("/instruments", methods=["GET"])
@public
@bp.arguments(InstrumentQuery, location="query", as_kwargs=True)
@bp.response(200, InstrumentPageOut)
def list_instruments(*, q: str | None, category: str | None, platform_id: int | None, industry: Industry | None,
                     large: bool | None, sharing_mode: SharingMode | None, price_min: int | None,
                     price_max: int | None, available_from: datetime | None, available_to: datetime | None,
                     sort: CatalogueSort, page: int, per_page: int):
    """Search the public catalogue (published instruments and those under maintenance). Prices are the
    hourly rates for district enterprises, in fen. With available_from and available_to, only the
    instruments free for the whole of that time."""
    found = catalogue.search_catalogue(
        db.session, q=q, category=category, platform_id=platform_id, industry=industry, large=large,
        sharing_mode=sharing_mode, price_min_fen=price_min, price_max_fen=price_max, free_from=available_from,
        free_to=available_to, sort=sort, page=page,
        per_page=per_page, large_line_fen=current_app.config["LARGE_INSTRUMENT_LINE_FEN"],
        dialect=db.session.get_bind().dialect.name, language=current_language())
    return {"items": found.items, "total": found.total, "page": found.page, "per_page": found.per_page,
            "did_you_mean": found.did_you_mean}


@bp.route("/instruments/<id:instrument_id>", methods=["GET"])
@public
@bp.response(200, InstrumentOut)
@bp.alt_response(404, description="No such instrument in the catalogue, or not one the caller may see")
@bp.doc(security=[{}, {"bearer": []}])
def get_instrument(instrument_id: int):
    """One instrument's public record: catalogue instruments for anyone; with a bearer token, the
    platform's admins and the bureau also get their instruments in any other state."""
    return services.get_instrument(db.session, instrument_id, current_principal())
