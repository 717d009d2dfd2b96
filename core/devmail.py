"""The development mail catcher: `make run` starts aiosmtpd on 127.0.0.1, which keeps every message in a
Maildir (instance/mail); these pages read it. They answer 404 unless DEV_MAILDIR is set, which only the
development commands do. The bureau reads every message, anyone else the messages sent to their own address."""
from __future__ import annotations

import io
import mailbox
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, render_template, send_file
from flask_babel import lazy_gettext as _l

from core.auth import AccessRule, current_principal, requires
from core.errors import NotFound
from core.models import Role, User
from core.templating import NavItem, register_nav

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")
READS_ALL = Role.BUREAU_ADMIN
PARSER = BytesParser(policy=policy.default)


@dataclass(frozen=True, slots=True)
class Mail:
    key: str
    message: EmailMessage

    @property
    def recipients(self) -> set[str]:
        return {address.lower() for _, address in getaddresses(self.message.get_all("To", []))}

    @property
    def sent_at(self) -> datetime | None:
        try:
            return parsedate_to_datetime(self.message["Date"]) if self.message["Date"] else None
        except (TypeError, ValueError):
            return None

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain", "html"))
        return body.get_content() if body is not None else ""

    @property
    def attachments(self) -> list[EmailMessage]:
        return list(self.message.iter_attachments())


def _maildir() -> mailbox.Maildir:
    if not current_app.config.get("DEV_MAILDIR"):
        abort(404)
    return mailbox.Maildir(Path(current_app.config["DEV_MAILDIR"]), factory=None, create=True)


def readable_mail(reader: User) -> list[Mail]:
    """The messages this person may read, newest first."""
    box = _maildir()
    mails = [Mail(key, PARSER.parsebytes(box.get_bytes(key))) for key in box.keys()]
    if not reader.has_role(READS_ALL):
        mails = [mail for mail in mails if reader.email.lower() in mail.recipients]
    return sorted(mails, key=lambda mail: (mail.sent_at is not None, mail.sent_at), reverse=True)


def _find(key: str) -> Mail:
    for mail in readable_mail(current_principal()):
        if mail.key == key:
            return mail
    raise NotFound("mail_not_found", _l("There is no such message in your mailbox."))


@bp.get("/")
@requires()
def inbox():
    return render_template("core/devmail.html", mails=readable_mail(current_principal()))


@bp.get("/<message_key>")
@requires()
def message(message_key: str):
    return render_template("core/devmail_message.html", mail=_find(message_key))


@bp.get("/<message_key>/<int:index>")
@requires()
def attachment(message_key: str, index: int):
    attachments = _find(message_key).attachments
    if not 0 <= index < len(attachments):
        raise NotFound("attachment_not_found", _l("The message has no such attachment."))
    part = attachments[index]
    return send_file(io.BytesIO(part.get_payload(decode=True)), mimetype=part.get_content_type(),
                     as_attachment=True, download_name=part.get_filename() or "attachment")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    if app.config.get("DEV_MAILDIR"):
        register_nav(app, [NavItem("devmail.inbox", _l("Mail (development)"), AccessRule(frozenset()))])
