"""Page forms of the booking calendar: bookings, rules, maintenance, qualifications and service terms;
shape only, the rules are in the services."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import HiddenInput

from marketplace.booking.models import QUALIFICATION_RULE_LABELS, BookingRules

# --- booking pages (marketplace/booking/views.py) ---------------------------------------------------

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]


def _calendar_year(form: FlaskForm, field: DateTimeLocalField) -> None:
    if field.data is not None and not 2000 <= field.data.year <= 2099:
        raise ValidationError(_("Choose a date between the years 2000 and 2099."))


def datetime_field(label) -> DateTimeLocalField:
    """A wall-clock Asia/Shanghai time as typed (naive); the view turns it into UTC with clock.from_local."""
    return DateTimeLocalField(label, format=DATETIME_FORMATS, validators=[InputRequired(), _calendar_year],
                              invalid_value_message=_l("Enter a date and time, e.g. 2026-12-07 09:00."))


class BookingForm(FlaskForm):
    """Shape only: the instrument's rules (grid, duration, lead time, holidays…) are the service's."""

    start = datetime_field(_l("Start"))
    end = datetime_field(_l("End"))
    purpose = TextAreaField(_l("Purpose (optional)"), validators=[Optional(), Length(max=500)])
    weeks = IntegerField(_l("Repeat weekly, this many times in all (optional)"),
                         validators=[Optional(), NumberRange(min=1, max=1000)])
    terms_id = IntegerField(widget=HiddenInput(), validators=[Optional()])
    # the booker's usable vouchers (filled by the view); any id is passed on: the voucher rules refuse with a reason
    voucher_id = SelectField(_l("Innovation voucher"), coerce=int, validate_choice=False, validators=[Optional()])
    accept_terms = BooleanField(_l("I have read and accept the service terms above"))
    # a weekly series' confirmation: the starts its preview showed, as ISO instants separated by spaces
    expected = HiddenField(validators=[Optional(), Length(max=2_000)])
    preview = SubmitField(_l("Show the price"))
    submit = SubmitField(_l("Book"))

    def expected_starts(self) -> list[datetime] | None:
        """The previewed starts of a series being confirmed; None when this is not a confirmation."""
        return [datetime.fromisoformat(text) for text in self.expected.data.split()] if self.expected.data else None

    def validate_expected(self, field: HiddenField) -> None:
        try:
            starts = self.expected_starts()
        except ValueError:
            raise ValidationError(_("The previewed dates were damaged; look at the series again.")) from None
        if starts is not None and any(start.tzinfo is None for start in starts):
            raise ValidationError(_("The previewed dates were damaged; look at the series again."))

    def validate_accept_terms(self, field: BooleanField) -> None:
        if not self.preview.data and not field.data:
            raise ValidationError(_("Read the service terms and tick the box to accept them."))


class CancelBookingForm(FlaskForm):
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=500)])
    # the fee the confirmation page showed: the cancellation is made at that fee or not at all
    fee_fen = IntegerField(widget=HiddenInput(), validators=[Optional(), NumberRange(min=0)])
    submit = SubmitField(_l("Cancel the booking"))


# --- the operator's day sheet (marketplace/booking/platform_views.py) -------------------------------

class CheckInForm(FlaskForm):
    """Check-in; confirm is set by the confirmation step of an early or late check-in."""
    confirm = BooleanField(_l("I confirm the check-in"))
    back = HiddenField()  # the page the operator came from
    submit = SubmitField(_l("Confirm the check-in"))


class NoShowForm(FlaskForm):
    """Mark a no-show, or undo one: always with a reason."""
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
    back = HiddenField()


# --- the platform's and the bureau's calendar settings (marketplace/booking/platform_views.py) ----

WEEKDAY_LABELS = {"0": _l("Monday"), "1": _l("Tuesday"), "2": _l("Wednesday"), "3": _l("Thursday"),
                  "4": _l("Friday"), "5": _l("Saturday"), "6": _l("Sunday")}
RULE_NUMBERS = ("slot_minutes", "min_minutes", "max_minutes", "lead_minutes", "horizon_days", "buffer_minutes",
                "free_cancel_hours", "late_cancel_fee_pct", "no_show_fee_pct", "no_show_grace_minutes",
                "waitlist_offer_minutes", "check_in_window_minutes")
RULE_FLAGS = ("closed_on_holidays", "requires_approval", "requires_operator", "allows_overnight")


def _hours_field(day: str) -> StringField:
    return StringField(WEEKDAY_LABELS[day], validators=[Optional(), Length(max=200)],
                       description=_l("e.g. 08:30-12:00, 13:30-17:30; empty: closed"))


def _number_field(label, description=None) -> IntegerField:
    return IntegerField(label, validators=[InputRequired()], description=description)


class BookingRulesForm(FlaskForm):
    """Shape only: marketplace.booking.calendar_admin.check_rules checks the rules."""

    open_hours_0, open_hours_1, open_hours_2, open_hours_3, open_hours_4, open_hours_5, open_hours_6 = (
        _hours_field(day) for day in WEEKDAY_LABELS)
    closed_on_holidays = BooleanField(_l("Closed on public holidays, open on official make-up working days"))
    slot_minutes = _number_field(_l("Slot (minutes)"), _l("Bookings start and end on this grid; it divides a day."))
    min_minutes = _number_field(_l("Shortest booking (minutes)"))
    max_minutes = _number_field(_l("Longest booking (minutes)"))
    lead_minutes = _number_field(_l("Lead time (minutes)"), _l("How long ahead a booking must be made."))
    horizon_days = _number_field(_l("Horizon (days)"), _l("How far ahead bookings open."))
    buffer_minutes = _number_field(_l("Buffer after each booking (minutes)"))
    requires_approval = BooleanField(_l("The platform approves each booking"))
    requires_operator = BooleanField(_l("An operator must be present"))
    allows_overnight = BooleanField(_l("Bookings may run overnight or over several days"))
    qualification = SelectField(_l("Qualification"), choices=[
        SelectChoice(rule.value, label) for rule, label in QUALIFICATION_RULE_LABELS.items()])
    free_cancel_hours = _number_field(_l("Free cancellation until (hours before the start)"))
    late_cancel_fee_pct = _number_field(_l("Late-cancellation fee (percent of the price)"))
    no_show_fee_pct = _number_field(_l("No-show fee (percent of the price)"))
    no_show_grace_minutes = _number_field(_l("No-show after (minutes without check-in)"))
    waitlist_offer_minutes = _number_field(_l("Waitlist offer holds for (minutes)"))
    check_in_window_minutes = _number_field(_l("Check-in window (minutes)"), _l(
        "Check-in opens this long before the start; later than this after the start, it is late and a no-show "
        "may be marked."))
    save = SubmitField(_l("Save the rules"))

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"open_hours": {day: getattr(self, f"open_hours_{day}").data or ""
                                                 for day in WEEKDAY_LABELS}}
        values |= {name: getattr(self, name).data for name in (*RULE_NUMBERS, *RULE_FLAGS, "qualification")}
        return values

    def load(self, rules: BookingRules) -> None:
        for day in WEEKDAY_LABELS:
            getattr(self, f"open_hours_{day}").data = ", ".join(f"{opens}-{closes}"
                                                                for opens, closes in rules.open_hours.get(day, []))
        for name in (*RULE_NUMBERS, *RULE_FLAGS):
            getattr(self, name).data = getattr(rules, name)
        self.qualification.data = rules.qualification.value


class MaintenanceWindowForm(FlaskForm):
    start_at = datetime_field(_l("From"))
    end_at = datetime_field(_l("Until"))
    reason = StringField(_l("Reason (optional)"), validators=[Optional(), Length(max=200)])
    submit = SubmitField(_l("Add the window"))


class MaintenanceImportForm(FlaskForm):
    file = FileField(_l("iCalendar file (.ics)"), validators=[FileRequired(_l("Choose an .ics file."))])
    submit = SubmitField(_l("Import"))


class QualificationForm(FlaskForm):
    email = EmailField(_l("E-mail of the person"), validators=[DataRequired(), Length(max=254)])
    expires_on = DateField(_l("Valid until (empty: no expiry)"), validators=[Optional()])
    submit = SubmitField(_l("Record the qualification"))


class ServiceTermsForm(FlaskForm):
    scope = TextAreaField(_l("Scope of the service"), validators=[DataRequired(), Length(max=20_000)])
    confidentiality = TextAreaField(_l("Confidentiality"), validators=[DataRequired(), Length(max=20_000)])
    intellectual_property = TextAreaField(_l("Intellectual property"), validators=[DataRequired(), Length(max=20_000)])
    liability = TextAreaField(_l("Liability"), validators=[DataRequired(), Length(max=20_000)])
    submit = SubmitField(_l("Publish as a new version"))
