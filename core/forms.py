"""Page forms of core: shape only; the rules live in services."""
from __future__ import annotations

from flask import flash
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from stdnum.cn import uscc
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange, Optional, ValidationError

from core import audit_log
from core.errors import KequipError
from core.holidays import DAY_KIND_LABELS, NAME_LENGTH, DayKind
from core.models import INDUSTRY_LABELS, LEGAL_FORM_LABELS, PLATFORM_TYPE_LABELS, ROLE_LABELS, VerificationState
from core.services import MIN_PASSWORD_LENGTH

LANGUAGE_CHOICES = [SelectChoice("zh_CN", "简体中文"), SelectChoice("en", "English")]


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(member.value, label) for member, label in labels.items()]


def _check_credit_code(form: FlaskForm, field: StringField) -> None:
    if field.data and not uscc.is_valid(field.data.strip()):
        raise ValidationError(_("The check digit of this credit code is wrong."))


# Password managers fill in and propose passwords by these
CURRENT_PASSWORD = {"autocomplete": "current-password"}
NEW_PASSWORD = {"autocomplete": "new-password"}


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)], render_kw=CURRENT_PASSWORD)
    remember = BooleanField(_l("Keep me logged in"))
    submit = SubmitField(_l("Log in"))


class RegistrationForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=100)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=30)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
                             render_kw=NEW_PASSWORD)
    password_again = PasswordField(_l("Password again"), render_kw=NEW_PASSWORD,
                                   validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))])
    enterprise_name = StringField(_l("Enterprise name"), validators=[DataRequired(), Length(max=200)])
    credit_code = StringField(_l("Unified social credit code"),
                              validators=[DataRequired(), Length(18, 18), _check_credit_code])
    legal_representative = StringField(_l("Legal representative"), validators=[DataRequired(), Length(max=100)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    is_tech_sme = BooleanField(_l("Registered technology-based SME"))
    submit = SubmitField(_l("Register"))


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Send me a link"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
                             render_kw=NEW_PASSWORD)
    password_again = PasswordField(_l("Password again"), render_kw=NEW_PASSWORD,
                                   validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))])
    submit = SubmitField(_l("Set the password"))


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)],
                                     render_kw=CURRENT_PASSWORD)
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
                             render_kw=NEW_PASSWORD)
    password_again = PasswordField(_l("Password again"), render_kw=NEW_PASSWORD,
                                   validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))])
    submit = SubmitField(_l("Change the password"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=100)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=30)])
    locale = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
    submit = SubmitField(_l("Save"))


class OrganisationForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Save"))


class EnterpriseForm(OrganisationForm):
    legal_representative = StringField(_l("Legal representative"), validators=[DataRequired(), Length(max=100)])
    actual_controller = StringField(_l("Actual controller (实际控制人)"), validators=[Optional(), Length(max=100)],
                                    description=_l("Enterprises under one actual controller share one yearly "
                                                   "voucher cap."))
    is_tech_sme = BooleanField(_l("Registered technology-based SME"))


class BureauEnterpriseForm(EnterpriseForm):
    credit_code = StringField(_l("Unified social credit code"),
                              validators=[DataRequired(), Length(18, 18), _check_credit_code])


class PlatformForm(OrganisationForm):
    platform_type = SelectField(_l("Type"), choices=_choices(PLATFORM_TYPE_LABELS))
    legal_form = SelectField(_l("Legal form"), choices=_choices(LEGAL_FORM_LABELS))
    industries = SelectMultipleField(_l("Industries"), choices=_choices(INDUSTRY_LABELS),
                                     validators=[DataRequired()])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    # the legal entity behind the platform (to tell related parties) and where voucher claims are paid
    credit_code = StringField(_l("Unified social credit code of the legal entity"),
                              validators=[Optional(), Length(18, 18), _check_credit_code])
    legal_representative = StringField(_l("Legal representative"), validators=[Optional(), Length(max=100)])
    actual_controller = StringField(_l("Actual controller (实际控制人)"), validators=[Optional(), Length(max=100)])
    bank_account_name = StringField(_l("Bank account name"), validators=[Optional(), Length(max=200)])
    bank_name = StringField(_l("Bank"), validators=[Optional(), Length(max=200)])
    bank_account_number = StringField(_l("Bank account number"), validators=[Optional(), Length(max=40)],
                                      description=_l("Voucher claims are paid to this account."))


class VerificationForm(FlaskForm):
    decision = SelectField(_l("Decision"), choices=[
        SelectChoice(VerificationState.VERIFIED.value, _l("Verify")),
        SelectChoice(VerificationState.REJECTED.value, _l("Reject (give the reason)"))])
    note = StringField(_l("Note or reason"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Record the decision"))


class ChangeRejectForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
    submit = SubmitField(_l("Reject"))


class RoleGrantForm(FlaskForm):
    role = SelectField(_l("Role"), choices=_choices(ROLE_LABELS))
    organisation_id = SelectField(_l("Organisation"), coerce=int, validators=[Optional()])
    submit = SubmitField(_l("Grant"))

    def fill_organisations(self, organisations: list) -> None:
        self.organisation_id.choices = [SelectChoice(0, _("— none —"))] + [
            SelectChoice(o.id, o.name) for o in organisations]


class AuditFilterForm(FlaskForm):
    """The log's filters: a value that does not parse is shown as the field's error and not applied."""

    class Meta:
        csrf = False

    since = DateField(_l("From"), validators=[Optional()])
    until = DateField(_l("To"), validators=[Optional()])
    person = StringField(_l("Person (e-mail or name)"), validators=[Optional(), Length(max=100)])
    organisation = StringField(_l("Organisation of the actor"), validators=[Optional(), Length(max=100)])
    action = SelectField(_l("Action"), validators=[Optional()])
    subject_type = SelectField(_l("Object type"), validators=[Optional()])
    subject_id = IntegerField(_l("Object number"), validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])

    def fill_choices(self, actions: list[str]) -> None:
        everything = SelectChoice("", _("— all —"))
        self.action.choices = [everything] + [SelectChoice(a, audit_log.action_label(a)) for a in actions]
        self.subject_type.choices = [everything] + [
            SelectChoice(key, str(label)) for key, label in audit_log.SUBJECT_LABELS.items()]

    def filters(self) -> dict:
        """The valid filters by name; fields with an error count as empty."""
        names = ("since", "until", "person", "organisation", "action", "subject_type", "subject_id")
        return {name: None if getattr(self, name).errors else getattr(self, name).data for name in names}

    def query_args(self) -> dict[str, str]:
        return {name: self[name].raw_data[0] for name in self.filters() if self[name].raw_data}


def show_error(form: FlaskForm, error: KequipError) -> None:
    """A service's error beside its field, or as a flash message when the form has no such field."""
    if not show_rule_error(form, error):
        flash(error.message, "danger")


def show_rule_error(form: FlaskForm, error: KequipError) -> bool:
    """Put a service's error beside its field; False when the form has no such field (flash it then)."""
    field = getattr(form, error.field, None) if error.field else None
    if field is None:
        return False
    field.errors = [*field.errors, error.message]
    return True


class HolidayChangeForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[SelectChoice(kind.value, DAY_KIND_LABELS[kind])
                                            for kind in (DayKind.HOLIDAY, DayKind.MAKEUP_WORKDAY)])
    name = StringField(_l("Holiday"), validators=[DataRequired(), Length(max=NAME_LENGTH)])
    submit = SubmitField(_l("Save"))


class HolidayDayForm(HolidayChangeForm):
    day = DateField(_l("Date"), validators=[DataRequired()])


class HolidayImportForm(FlaskForm):
    text = TextAreaField(_l("Days, one a line: date,kind,name"), validators=[Optional()],
                         render_kw={"rows": 12, "placeholder": "2027-01-01,holiday,元旦\n2027-02-20,makeup_workday,春节"})
    file = FileField(_l("Or a CSV file with the same columns"))
    submit = SubmitField(_l("Import the arrangement"))
