"""Forms of the claim pages, the flags and the related parties: shape only; the rules are in
vouchers/claims/services.py and vouchers/services.py."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import BooleanField, DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from vouchers.claims.services import DECLARATION, MAX_TEXT
from vouchers.models import CLAIM_STATE_LABELS


class BankFields:
    bank_account_name = StringField(_l("Account name"), validators=[DataRequired(), Length(max=200)])
    bank_name = StringField(_l("Bank"), validators=[DataRequired(), Length(max=200)])
    bank_account_number = StringField(_l("Account number"), validators=[DataRequired(), Length(max=40)])


class ProviderClaimForm(BankFields, FlaskForm):
    platform_id = SelectField(_l("Platform"), coerce=int, validators=[DataRequired()])
    period_start = DateField(_l("Period from"), validators=[DataRequired()])
    period_end = DateField(_l("Period to"), validators=[DataRequired()])
    declaration_accepted = BooleanField(DECLARATION, validators=[DataRequired()])
    submit = SubmitField(_l("Sign and submit the claim"))


class EnterpriseClaimForm(BankFields, FlaskForm):
    enterprise_id = SelectField(_l("Enterprise"), coerce=int, validators=[DataRequired()])
    period_start = DateField(_l("Period from"), validators=[DataRequired()])
    period_end = DateField(_l("Period to"), validators=[DataRequired()])
    attachments = MultipleFileField(_l("Proof of payment (PDF, JPEG or PNG, 10 MB each)"))
    declaration_accepted = BooleanField(DECLARATION, validators=[DataRequired()])
    submit = SubmitField(_l("Sign and submit the claim"))


class ResubmitForm(FlaskForm):
    bank_account_name = StringField(_l("Account name"), validators=[Optional(), Length(max=200)])
    bank_name = StringField(_l("Bank"), validators=[Optional(), Length(max=200)])
    bank_account_number = StringField(_l("Account number"), validators=[Optional(), Length(max=40)])
    declaration_accepted = BooleanField(DECLARATION, validators=[DataRequired()])
    submit = SubmitField(_l("Resubmit without the returned lines"))


class ApproveClaimForm(FlaskForm):
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=1000)])
    submit = SubmitField(_l("Approve"))


class ReturnClaimForm(FlaskForm):
    """The reason for the whole claim; a reason per line is read from line-<id> fields (line_reasons)."""

    note = TextAreaField(_l("Reason for the whole claim"), validators=[Optional(), Length(max=1000)])
    submit = SubmitField(_l("Return to the claimant"))


def line_reasons(form_data, line_ids: list[int]) -> dict[int, str]:
    """The per-line reasons sent with a ReturnClaimForm, cut to their column's length."""
    return {line_id: (form_data.get(f"line-{line_id}") or "").strip()[:MAX_TEXT] for line_id in line_ids}


class PaidForm(FlaskForm):
    paid_on = DateField(_l("Paid on"), validators=[DataRequired()])
    payment_reference = StringField(_l("Payment reference"), validators=[DataRequired(), Length(max=100)])
    submit = SubmitField(_l("Mark paid"))


class ClaimAttachmentForm(FlaskForm):
    attachments = MultipleFileField(_l("Add files"))
    submit = SubmitField(_l("Upload"))


class ClaimFilterForm(FlaskForm):
    class Meta:
        csrf = False

    state = SelectField(_l("State"), choices=[SelectChoice("", _l("Every state"))] + [
        SelectChoice(state.value, label) for state, label in CLAIM_STATE_LABELS.items()], validators=[Optional()])
    platform_id = SelectField(_l("Platform"), coerce=int, validators=[Optional()])


class RelatedPartyForm(FlaskForm):
    enterprise_id = SelectField(_l("Enterprise"), coerce=int, validators=[DataRequired()])
    platform_id = SelectField(_l("Platform"), coerce=int, validators=[DataRequired()])
    note = StringField(_l("How they are related"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Declare related"))
