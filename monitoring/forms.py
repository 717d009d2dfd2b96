"""Forms of the usage pages: shape only, the rules are the services'."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from marketplace.booking.forms import datetime_field


class DeviceTokenForm(FlaskForm):
    label = StringField(_l("Device name"), validators=[DataRequired(), Length(max=100)])
    submit = SubmitField(_l("Make a device token"))


class MonitoringSettingsForm(FlaskForm):
    offline_after_minutes = IntegerField(_l("A device session ends after this many minutes without a heartbeat"),
                                         validators=[DataRequired(), NumberRange(min=1, max=1440)])
    submit = SubmitField(_l("Save"))


class UsageEntryForm(FlaskForm):
    start_at = datetime_field(_l("From"))
    end_at = datetime_field(_l("Until"))
    email = EmailField(_l("E-mail of the user (optional)"), validators=[Optional(), Length(max=254)])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Enter the use"))


class UsageCorrectionForm(FlaskForm):
    start_at = datetime_field(_l("From"))
    end_at = datetime_field(_l("Until"))
    reason = TextAreaField(_l("Reason for the correction"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Correct"))


class WalkInForm(FlaskForm):
    email = EmailField(_l("E-mail of the user (optional)"), validators=[Optional(), Length(max=254)])
    reason = StringField(_l("Why without a booking"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Start use without a booking"))
