"""Marketplace API: the catalogue releases, as JSON and as files."""
from __future__ import annotations

import io

import marshmallow as ma
from flask import send_file
from flask.typing import ResponseReturnValue

from core.auth import public
from core.db import end_reads
from core.extensions import db
from marketplace.blueprints import api_bp as bp
from marketplace.catalogue import releases
from marketplace.catalogue.models import ReleaseChange
from marketplace.registry.models import SharingMode

NUMBER = "<int(min=1, max=2147483647):number>"
BINARY = {"type": "string", "format": "binary"}


class ReleaseRecordOut(ma.Schema):
    """An instrument's public record as the release froze it; money in fen."""

    id = ma.fields.Integer(required=True)
    name_zh = ma.fields.String(required=True)
    name_en = ma.fields.String(required=True)
    model = ma.fields.String(required=True)
    manufacturer = ma.fields.String(required=True)
    country_of_origin = ma.fields.String(required=True)
    category_id = ma.fields.Integer(required=True)
    category_code = ma.fields.String(required=True)
    category_name_zh = ma.fields.String(required=True)
    category_name_en = ma.fields.String(required=True)
    platform_id = ma.fields.Integer(required=True)
    platform_name = ma.fields.String(required=True)
    original_value_fen = ma.fields.Integer(required=True)
    is_large = ma.fields.Boolean(required=True)
    purchased_on = ma.fields.String(allow_none=True, metadata={"description": "YYYY-MM-DD"})
    is_publicly_funded = ma.fields.Boolean(required=True)
    building = ma.fields.String(required=True)
    room = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    capabilities = ma.fields.List(ma.fields.String(), required=True)
    sample_requirements = ma.fields.String(required=True)
    contact_name = ma.fields.String(required=True)
    contact_phone = ma.fields.String(required=True)
    contact_email = ma.fields.String(required=True)
    sharing_mode = ma.fields.String(required=True, metadata={"enum": [mode.value for mode in SharingMode]})
    setup_fee_own_staff_fen = ma.fields.Integer(required=True)
    hourly_rate_own_staff_fen = ma.fields.Integer(required=True)
    setup_fee_district_enterprise_fen = ma.fields.Integer(required=True)
    hourly_rate_district_enterprise_fen = ma.fields.Integer(required=True)
    setup_fee_other_fen = ma.fields.Integer(required=True)
    hourly_rate_other_fen = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True, metadata={"enum": ["published", "maintenance"]})


class ReleaseItemOut(ma.Schema):
    instrument_id = ma.fields.Integer(required=True)
    change = ma.fields.String(required=True, metadata={"enum": [change.value for change in ReleaseChange]})
    changed_fields = ma.fields.List(ma.fields.String(), required=True,
                                    metadata={"description": "The record's keys that differ from the release before"})
    record = ma.fields.Nested(ReleaseRecordOut, required=True)


class ReleaseCountsOut(ma.Schema):
    instruments = ma.fields.Integer(required=True, metadata={"description": "In the catalogue at this release"})
    added = ma.fields.Integer(required=True)
    changed = ma.fields.Integer(required=True)
    unchanged = ma.fields.Integer(required=True)
    withdrawn = ma.fields.Integer(required=True)


class ReleaseOut(ma.Schema):
    number = ma.fields.Integer(required=True, metadata={"description": "1, 2, 3 … across the years"})
    label = ma.fields.String(required=True, metadata={"description": "e.g. 2026年第4期"})
    year = ma.fields.Integer(required=True)
    issue = ma.fields.Integer(required=True, metadata={"description": "The N of 第N期 within the year"})
    period = ma.fields.String(allow_none=True, required=True,
                              metadata={"description": "The quarter (2026Q4) of a scheduled release; null if by hand"})
    published_at = ma.fields.AwareDateTime(required=True)
    counts = ma.fields.Nested(ReleaseCountsOut, required=True)
    items = ma.fields.List(ma.fields.Nested(ReleaseItemOut), required=True,
                           metadata={"description": "The catalogue at this release: added, changed and unchanged"})
    withdrawn = ma.fields.List(ma.fields.Nested(ReleaseItemOut), required=True,
                               metadata={"description": "Left the catalogue since the release before, as last released"})


def _document(release) -> dict:
    items = releases.release_items(db.session, release)
    end_reads(release)  # the document is made and dumped with no transaction open
    return releases.release_document(release, items)


def _file(release, fmt: str) -> ResponseReturnValue:
    items = releases.release_items(db.session, release)
    end_reads(release)  # the file is made with no transaction open
    body, mimetype, name = releases.release_download(release, items, fmt)
    return send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True, download_name=name)


@bp.route("/catalogue/releases/latest", methods=["GET"])
@public
@bp.response(200, ReleaseOut)
def latest_release():
    """The latest catalogue release, whole (404 not_found before the first)."""
    return _document(releases.get_latest_release(db.session))


@bp.route("/catalogue/releases/latest.csv", methods=["GET"])
@public
@bp.response(200, BINARY, content_type="text/csv", description="UTF-8 with a byte-order mark; Chinese headers")
def latest_release_csv():
    """The latest catalogue release as CSV: the catalogue, then the withdrawn instruments."""
    return _file(releases.get_latest_release(db.session), "csv")


@bp.route("/catalogue/releases/latest.xlsx", methods=["GET"])
@public
@bp.response(200, BINARY, content_type=releases.XLSX_MIMETYPE,
             description="Sheet 1 the catalogue, sheet 2 what was added, changed and withdrawn")
def latest_release_xlsx():
    """The latest catalogue release as an Excel workbook."""
    return _file(releases.get_latest_release(db.session), "xlsx")


@bp.route(f"/catalogue/releases/{NUMBER}", methods=["GET"])
@public
@bp.response(200, ReleaseOut)
def release_by_number(number: int):
    """A catalogue release by its number (404 not_found if there is none)."""
    return _document(releases.get_release(db.session, number))
