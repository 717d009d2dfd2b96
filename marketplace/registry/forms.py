"""Page forms of the instrument registry: shape only; the rules are in services.check_values."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from core.money import MAX_YUAN, fen_to_yuan, yuan_to_fen
from marketplace.registry.models import (
    EDITABLE_FIELDS,
    SHARING_MODE_LABELS,
    Instrument,
    InstrumentCategory,
    UserType,
)

FEE_FIELDS = [(t, f"setup_fee_{t.value}_fen", f"hourly_rate_{t.value}_fen") for t in UserType]
YUAN_FIELDS = ("original_value_fen", *(name for _t, setup, hourly in FEE_FIELDS for name in (setup, hourly)))


def _two_decimals(form: FlaskForm, field: DecimalField) -> None:
    if field.data is not None and not field.errors:  # out of range: NumberRange has said so
        try:
            yuan_to_fen(field.data)
        except ValueError:
            raise ValidationError(_("At most two decimals (fen).")) from None


def _yuan_field(label, *, required: bool = False, minimum: Decimal = Decimal("0")) -> DecimalField:
    return DecimalField(label, places=2, validators=[
        DataRequired() if required else Optional(), NumberRange(min=minimum, max=MAX_YUAN),
        _two_decimals])


class InstrumentForm(FlaskForm):
    asset_number = StringField(_l("Asset number"), validators=[DataRequired(), Length(max=50)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    model = StringField(_l("Model"), validators=[DataRequired(), Length(max=100)])
    manufacturer = StringField(_l("Manufacturer"), validators=[DataRequired(), Length(max=200)])
    country_of_origin = StringField(_l("Country of origin"), validators=[Optional(), Length(max=50)])
    category_id = SelectField(_l("Category"), coerce=int, validators=[DataRequired()])
    original_value_fen = _yuan_field(_l("Original value (yuan)"), required=True, minimum=Decimal("0.01"))
    purchased_on = DateField(_l("Purchase date"), validators=[Optional()])
    is_publicly_funded = BooleanField(_l("Bought with public money"))
    building = StringField(_l("Building"), validators=[Optional(), Length(max=100)])
    room = StringField(_l("Room"), validators=[Optional(), Length(max=50)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    capabilities = TextAreaField(_l("Test capabilities (one per line)"), validators=[Optional(), Length(max=5000)])
    sample_requirements = TextAreaField(_l("Sample requirements"), validators=[Optional(), Length(max=5000)])
    contact_name = StringField(_l("Contact person"), validators=[Optional(), Length(max=100)])
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=30)])
    contact_email = EmailField(_l("Contact e-mail"), validators=[Optional(), Length(max=254)])
    sharing_mode = SelectField(_l("Sharing mode"),
                               choices=[SelectChoice(m.value, label) for m, label in SHARING_MODE_LABELS.items()])
    setup_fee_own_staff_fen = _yuan_field(_l("Setup fee (yuan)"))
    hourly_rate_own_staff_fen = _yuan_field(_l("Hourly rate (yuan)"))
    setup_fee_district_enterprise_fen = _yuan_field(_l("Setup fee (yuan)"))
    hourly_rate_district_enterprise_fen = _yuan_field(_l("Hourly rate (yuan)"))
    setup_fee_other_fen = _yuan_field(_l("Setup fee (yuan)"))
    hourly_rate_other_fen = _yuan_field(_l("Hourly rate (yuan)"))
    save = SubmitField(_l("Save as draft"))
    save_and_submit = SubmitField(_l("Save and submit for review"))

    def fill_categories(self, categories: list[InstrumentCategory], language: str) -> None:
        parents = {c.id: c.name(language) for c in categories if c.parent_id is None}
        self.category_id.choices = [SelectChoice(c.id, f"{c.code} {c.name(language)}", optgroup=parents[c.parent_id])
                                    for c in categories if c.parent_id is not None]

    def values(self) -> dict[str, Any]:
        """The form as service values: yuan → fen, capabilities as a list."""
        values: dict[str, Any] = {}
        for name in EDITABLE_FIELDS:
            data = getattr(self, name).data
            if name in YUAN_FIELDS:
                data = yuan_to_fen(data) if data is not None else 0
            elif name == "capabilities":
                data = [line.strip() for line in (data or "").splitlines() if line.strip()]
            elif isinstance(data, str):
                data = data.strip()
            values[name] = data
        return values

    def load(self, instrument: Instrument) -> None:
        """Fill from the instrument, with its change in review on top when it has one."""
        current = {name: getattr(instrument, name) for name in EDITABLE_FIELDS} | (instrument.pending_changes or {})
        for name, value in current.items():
            if name in YUAN_FIELDS:
                value = fen_to_yuan(value)
            elif name == "capabilities":
                value = "\n".join(value or [])
            elif name == "purchased_on" and isinstance(value, str):
                value = date.fromisoformat(value)
            getattr(self, name).data = value


class ReviewFilterForm(FlaskForm):
    class Meta:
        csrf = False

    platform_id = SelectField(_l("Platform"), coerce=int, validators=[Optional()])
    category = SelectField(_l("Category"), validators=[Optional()])
    older_than_days = SelectField(_l("Waiting time"), coerce=int, validators=[Optional()], choices=[
        SelectChoice(0, _l("Any time")), SelectChoice(3, _l("More than 3 days")),
        SelectChoice(7, _l("More than a week")), SelectChoice(30, _l("More than a month"))])


class RejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the rejection"), validators=[DataRequired(), Length(max=1000)])
    submit = SubmitField(_l("Reject"))
