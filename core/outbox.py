"""Mail goes through the outbox: written in the change's transaction, sent by a job after commit (STYLE 2.7)."""
from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import OutboxMessage

log = logging.getLogger(__name__)


def enqueue_mail(session: Session, *, to: str, locale: str, template: str, context: dict) -> OutboxMessage:
    """template names templates/mail/<template>.subject.txt, .txt and .html."""
    message = OutboxMessage(to=to, locale=locale, template=template, context=context)
    session.add(message)
    return message


def render_mail(message: OutboxMessage) -> EmailMessage:
    context = dict(message.context, public_url=current_app.config["PUBLIC_URL"].rstrip("/"))
    with force_locale(message.locale):
        subject = render_template(f"mail/{message.template}.subject.txt", **context).strip()
        text = render_template(f"mail/{message.template}.txt", **context)
        html = render_template(f"mail/{message.template}.html", **context)
    email = EmailMessage()
    email["Subject"] = subject
    email["From"] = current_app.config["MAIL_SENDER"]
    email["To"] = message.to
    email["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain="kequip.test")
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return email


def _smtp() -> smtplib.SMTP:
    config = current_app.config
    smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30)
    if config["MAIL_USE_TLS"]:
        smtp.starttls()
    if config["MAIL_USERNAME"]:
        smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
    return smtp


def send_pending(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Send what waits, oldest first; a failure is counted and retried on a later run."""
    due = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None),
               OutboxMessage.attempts < current_app.config["MAIL_MAX_ATTEMPTS"])
        .order_by(OutboxMessage.id).limit(limit).with_for_update(skip_locked=True)).all()
    if not due:
        return 0
    sent = 0
    try:
        smtp = _smtp()
    except (OSError, smtplib.SMTPException) as error:
        log.warning("SMTP server unreachable, %d messages wait: %s", len(due), error)
        for message in due:
            message.attempts += 1
            message.last_error = str(error)[:500]
        return 0
    with smtp:
        for message in due:
            message.attempts += 1
            try:
                email = render_mail(message)
            except Exception as error:  # a missing template or a bad context spoils this message only
                message.last_error = f"render: {error!r}"[:500]
                log.exception("outbox message %d cannot be rendered", message.id)
                continue
            try:
                smtp.send_message(email)
            except smtplib.SMTPException as error:
                message.last_error = str(error)[:500]
                log.warning("outbox message %d not sent: %s", message.id, error)
                if smtp.sock is None:  # the server closed the connection: the rest waits, uncounted
                    break
                continue
            message.sent_at = now
            message.last_error = None
            sent += 1
    return sent
