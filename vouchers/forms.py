"""Page forms of the voucher pages: shape only; the rules are in vouchers/services.py.

Amounts are typed in yuan with at most two decimals and handed to services in fen; ratios are typed
in percent with at most two decimals and handed in basis points (50 % → 5,000 bp)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import (
    DateField,
    DecimalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from core.money import MAX_YUAN, fen_to_yuan, yuan_to_fen
from vouchers.models import APPLICATION_STATE_LABELS, REDEMPTION_MODE_LABELS, VOUCHER_STATE_LABELS, Programme

BASIS_POINTS_PER_PERCENT = 100


def percent_to_bp(percent: Decimal) -> int:
    """'50' → 5,000; '33.33' → 3,333; more than two decimals is refused (ValueError), never rounded."""
    bp = Decimal(percent) * BASIS_POINTS_PER_PERCENT
    if bp != bp.to_integral_value():
        raise ValueError("more than two decimals")
    return int(bp)


def bp_to_percent(bp: int) -> Decimal:
    return Decimal(bp).scaleb(-2)


def _two_decimals(convert):
    def check(form: FlaskForm, field: DecimalField) -> None:
        if field.data is not None and not field.errors:  # out of range: NumberRange has said so
            try:
                convert(field.data)
            except ValueError:
                raise ValidationError(_("At most two decimals.")) from None
    return check


def yuan_field(label, *, required: bool = True, minimum: Decimal = Decimal("0.01")) -> DecimalField:
    return DecimalField(label, places=2, validators=[
        InputRequired() if required else Optional(), NumberRange(min=minimum, max=MAX_YUAN),
        _two_decimals(yuan_to_fen)])


def percent_field(label, description=None) -> DecimalField:
    return DecimalField(label, places=2, description=description, validators=[
        InputRequired(), NumberRange(min=Decimal("0.01"), max=Decimal("100")), _two_decimals(percent_to_bp)])


YUAN_FIELDS = ("pool_fen", "enterprise_year_cap_fen", "order_cap_fen")
PERCENT_FIELDS = ("coverage_bp", "sme_coverage_bp")


class ProgrammeForm(FlaskForm):
    """Field names are the service's value names, so a service's error lands beside its field."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    year = IntegerField(_l("Year"), validators=[InputRequired(), NumberRange(min=2000, max=2099)])
    pool_fen = yuan_field(_l("Budget pool (yuan)"))
    coverage_bp = percent_field(_l("Coverage ratio (%)"),
                                _l("The share of an eligible fee a voucher pays, e.g. 50"))
    sme_coverage_bp = percent_field(_l("Coverage ratio for technology-based SMEs (%)"),
                                    _l("At least the general ratio"))
    enterprise_year_cap_fen = yuan_field(_l("Cap per enterprise per year (yuan)"),)
    order_cap_fen = yuan_field(_l("Cap per order (yuan)"))
    validity_days = IntegerField(_l("Validity (days from issuance)"),
                                 validators=[InputRequired(), NumberRange(min=1, max=3660)])
    applications_open_on = DateField(_l("Applications open on"), validators=[InputRequired()])
    applications_close_on = DateField(_l("Applications close on"), validators=[InputRequired()])
    redemption_mode = SelectField(_l("Redemption mode"), choices=[
        SelectChoice(mode.value, label) for mode, label in REDEMPTION_MODE_LABELS.items()])
    eligible_category_codes = SelectMultipleField(
        _l("Eligible instrument categories"), validators=[Optional()],
        description=_l("None chosen: every category. A first-level category covers its sub-categories."))
    eligible_platform_ids = SelectMultipleField(_l("Eligible platforms"), coerce=int, validators=[Optional()],
                                                description=_l("None chosen: every platform."))
    submit = SubmitField(_l("Save"))

    def fill_choices(self, categories: list[tuple[str, str]], platforms: list[tuple[int, str]]) -> None:
        self.eligible_category_codes.choices = [SelectChoice(code, f"{code} {name}") for code, name in categories]
        self.eligible_platform_ids.choices = [SelectChoice(pid, name) for pid, name in platforms]

    def values(self) -> dict[str, Any]:
        """The form as service values: yuan → fen, percent → basis points."""
        values: dict[str, Any] = {"name": self.name.data.strip()}
        for name in ("year", "validity_days", "applications_open_on", "applications_close_on", "redemption_mode",
                     "eligible_category_codes", "eligible_platform_ids"):
            values[name] = getattr(self, name).data
        values["eligible_category_codes"] = sorted(values["eligible_category_codes"] or [])
        values["eligible_platform_ids"] = sorted(values["eligible_platform_ids"] or [])
        for name in YUAN_FIELDS:
            values[name] = yuan_to_fen(getattr(self, name).data)
        for name in PERCENT_FIELDS:
            values[name] = percent_to_bp(getattr(self, name).data)
        return values

    def load(self, programme: Programme) -> None:
        for name in ("name", "year", "validity_days", "applications_open_on", "applications_close_on",
                     "eligible_category_codes", "eligible_platform_ids"):
            getattr(self, name).data = getattr(programme, name)
        self.redemption_mode.data = programme.redemption_mode.value
        for name in YUAN_FIELDS:
            getattr(self, name).data = fen_to_yuan(getattr(programme, name))
        for name in PERCENT_FIELDS:
            getattr(self, name).data = bp_to_percent(getattr(programme, name))


class ApplicationForm(FlaskForm):
    enterprise_id = SelectField(_l("For the enterprise"), coerce=int, validators=[Optional()])  # none: the first
    requested_fen = yuan_field(_l("Amount asked (yuan)"))
    purpose = TextAreaField(_l("Purpose"), validators=[DataRequired(), Length(max=2000)],
                            description=_l("What the tests or services are for"))
    planned_instruments = TextAreaField(_l("Planned instruments"), validators=[Optional(), Length(max=2000)],
                                        description=_l("The instruments or kinds of test you plan to use"))
    attachments = MultipleFileField(_l("Attachments (PDF, JPEG or PNG, 10 MB each)"))
    submit = SubmitField(_l("Apply"))

    def values(self) -> dict[str, Any]:
        return {"enterprise_id": self.enterprise_id.data, "requested_fen": yuan_to_fen(self.requested_fen.data),
                "purpose": self.purpose.data, "planned_instruments": self.planned_instruments.data or ""}


class AttachmentForm(FlaskForm):
    attachments = MultipleFileField(_l("Attachments (PDF, JPEG or PNG, 10 MB each)"))
    submit = SubmitField(_l("Add"))


class ApproveForm(FlaskForm):
    amount_fen = yuan_field(_l("Amount to issue (yuan)"))
    submit = SubmitField(_l("Approve and issue"))


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=1000)])
    submit = SubmitField(_l("Reject"))


class VoidForm(FlaskForm):
    reason = TextAreaField(_l("Reason for voiding"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Void the voucher"))


class SuspendForm(FlaskForm):
    platform_id = SelectField(_l("Platform"), coerce=int, validators=[DataRequired()])
    reason = TextAreaField(_l("Reason for the suspension"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Suspend from the programme"))


class ApplicationFilterForm(FlaskForm):
    class Meta:
        csrf = False

    programme_id = SelectField(_l("Programme"), coerce=int, validators=[Optional()])
    state = SelectField(_l("State"), validators=[Optional()], choices=[
        SelectChoice("", _l("Every state")),
        *(SelectChoice(state.value, label) for state, label in APPLICATION_STATE_LABELS.items())])


class VoucherFilterForm(FlaskForm):
    class Meta:
        csrf = False

    programme_id = SelectField(_l("Programme"), coerce=int, validators=[Optional()])
    enterprise_id = SelectField(_l("Enterprise"), coerce=int, validators=[Optional()])
    state = SelectField(_l("State"), validators=[Optional()], choices=[
        SelectChoice("", _l("Every state")),
        *(SelectChoice(state.value, label) for state, label in VOUCHER_STATE_LABELS.items())])
