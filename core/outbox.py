"""Mail goes through the outbox: written in the change's transaction, sent by a job after commit.

The job claims what waits and commits, talks to the SMTP server with no transaction open (a slow or
unreachable server holds no lock), then records each outcome in a new transaction. A job that dies
between sending and recording leaves its claims to lapse: those messages are sent again (at least
once), never lost."""
from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A text file sent with a message (a calendar entry): made when the mail is written, since
    sending touches no database."""

    filename: str
    subtype: str  # of text/: "calendar"
    content: str
    params: tuple[tuple[str, str], ...] = ()  # of the Content-Type: (("method", "PUBLISH"),)

    def as_json(self) -> dict:
        return {"filename": self.filename, "subtype": self.subtype, "content": self.content,
                "params": dict(self.params)}


def enqueue_mail(session: Session, *, to: str, locale: str, template: str, context: dict,
                 attachments: tuple[Attachment, ...] = ()) -> OutboxMessage:
    """template names templates/mail/<template>.subject.txt, .txt and .html."""
    message = OutboxMessage(to=to, locale=locale, template=template, context=context,
                            attachments=[attachment.as_json() for attachment in attachments] or None)
    session.add(message)
    return message


def render_mail(message: OutboxMessage | Letter) -> EmailMessage:
    context = dict(message.context, public_url=current_app.config["PUBLIC_URL"].rstrip("/"))
    with force_locale(message.locale):
        subject = render_template(f"mail/{message.template}.subject.txt", **context).strip()
        text = render_template(f"mail/{message.template}.txt", **context)
        html = render_template(f"mail/{message.template}.html", **context)
    email = EmailMessage()
    email["Subject"] = subject
    email["From"] = current_app.config["MAIL_SENDER"]
    email["To"] = message.to
    # when it was written, not when a retry sent it (a message not stored yet is being written now)
    email["Date"] = format_datetime(message.created_at or datetime.now(UTC))
    email["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain="kequip.test")
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    for attachment in message.attachments or ():
        email.add_attachment(attachment["content"], subtype=attachment["subtype"],
                             filename=attachment["filename"], params=attachment["params"])
    return email


def _smtp() -> smtplib.SMTP:
    config = current_app.config
    smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30)
    if config["MAIL_USE_TLS"]:
        smtp.starttls()
    if config["MAIL_USERNAME"]:
        smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
    return smtp


# --- sending: claim and commit, talk to SMTP with no transaction open, record the outcome ------

CLAIM = timedelta(minutes=10)  # far longer than a batch takes; a job that died leaves its claims to lapse


@dataclass(frozen=True, slots=True)
class Letter:
    """What sending a message needs, copied from its row, so that no query runs while SMTP talks."""

    id: int
    to: str
    locale: str
    template: str
    context: dict
    created_at: datetime
    attachments: list | None


@dataclass(frozen=True, slots=True)
class Outcome:
    message_id: int
    sent: bool
    error: str | None = None
    tried: bool = True  # False: the connection was gone before its turn; the attempt is given back


def claim_pending(session: Session, *, now: datetime, limit: int = 100) -> list[Letter]:
    """The messages that wait and no other job is sending, oldest first, claimed until now + CLAIM.
    Each claim counts an attempt, so a message whose sending kills the job is not tried forever."""
    due = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None),
               OutboxMessage.attempts < current_app.config["MAIL_MAX_ATTEMPTS"],
               or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now))
        .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)).all()
    for message in due:
        message.claimed_until = now + CLAIM
        message.attempts += 1
    return [Letter(m.id, m.to, m.locale, m.template, dict(m.context), m.created_at, m.attachments) for m in due]


def deliver(letters: list[Letter]) -> list[Outcome]:
    """Render and send over one SMTP connection; touches no database. A failure spoils its own
    message only, unless the server closes the connection: the rest are then not tried."""
    if not letters:
        return []
    try:
        smtp = _smtp()
    except (OSError, smtplib.SMTPException) as error:
        log.warning("SMTP server unreachable, %d messages wait: %s", len(letters), error)
        return [Outcome(letter.id, sent=False, error=str(error)) for letter in letters]
    outcomes: list[Outcome] = []
    with smtp:
        for letter in letters:
            if smtp.sock is None:  # the server closed the connection: the rest wait, uncounted
                outcomes.append(Outcome(letter.id, sent=False, tried=False))
                continue
            try:
                email = render_mail(letter)
            except Exception as error:  # a missing template or a bad context spoils this message only
                log.exception("outbox message %d cannot be rendered", letter.id)
                outcomes.append(Outcome(letter.id, sent=False, error=f"render: {error!r}"))
                continue
            try:
                smtp.send_message(email)
            except smtplib.SMTPException as error:
                log.warning("outbox message %d not sent: %s", letter.id, error)
                outcomes.append(Outcome(letter.id, sent=False, error=str(error)))
                continue
            outcomes.append(Outcome(letter.id, sent=True))
    return outcomes


def record_outcomes(session: Session, outcomes: list[Outcome], *, now: datetime) -> int:
    """Write what happened and release the claims; the number sent. Recording twice changes nothing."""
    messages = {m.id: m for m in session.scalars(
        select(OutboxMessage).where(OutboxMessage.id.in_([o.message_id for o in outcomes])).with_for_update())}
    sent = 0
    for outcome in outcomes:
        message = messages.get(outcome.message_id)
        if message is None or message.sent_at is not None or message.claimed_until is None:
            continue
        message.claimed_until = None
        if outcome.sent:
            message.sent_at, message.last_error = now, None
            sent += 1
        elif outcome.tried:
            message.last_error = (outcome.error or "")[:500]
        else:
            message.attempts -= 1
    return sent
