"""The development mail catcher: aiosmtpd's Maildir handler, as `make run` starts it, keeps what the
outbox sends; the bureau reads every message on /dev/mail, anyone else only their own; without
DEV_MAILDIR (production) the pages do not exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

from core.outbox import Attachment, enqueue_mail, render_mail
from testsupport.servers import free_port


@pytest.fixture
def catcher(app, tmp_path, monkeypatch) -> Path:
    """The catcher `make mail` runs, on a free port; the app sends to it and reads its Maildir."""
    maildir = tmp_path / "mail"
    controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setitem(app.config, "MAIL_PORT", controller.port)
    monkeypatch.setitem(app.config, "DEV_MAILDIR", str(maildir))
    yield maildir
    controller.stop()


def _send(session, to: str, **kwargs) -> None:
    from core.jobs import send_outbox

    enqueue_mail(session, to=to, locale="zh_CN", template="password_reset",
                 context={"name": "测试", "path": "/reset/x", "minutes": 60}, **kwargs)
    session.commit()
    assert send_outbox() == 1


def test_the_bureau_reads_every_message_and_a_person_only_their_own(session, catcher, login_as):
    _send(session, "enterprise@kequip.test",
          attachments=(Attachment("booking-1.ics", "calendar", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),))
    _send(session, "someone-else@example.com")

    bureau = login_as("bureau")
    response = bureau.get("/dev/mail/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "enterprise@kequip.test" in page and "someone-else@example.com" in page
    assert "邮件（开发环境）" in page

    person = login_as("enterprise")
    page = person.get("/dev/mail/").get_data(as_text=True)
    assert "enterprise@kequip.test" in page and "someone-else@example.com" not in page
    [own] = re.findall(r'href="/dev/mail/([^"/]+)"', page)
    message = person.get(f"/dev/mail/{own}").get_data(as_text=True)
    assert "booking-1.ics" in message and "/reset/x" in message
    download = person.get(f"/dev/mail/{own}/0")
    assert download.status_code == 200 and download.mimetype == "text/calendar"
    assert download.get_data(as_text=True).startswith("BEGIN:VCALENDAR")
    assert person.get(f"/dev/mail/{own}/1").status_code == 404

    others = re.findall(r'href="/dev/mail/([^"/]+)"', bureau.get("/dev/mail/").get_data(as_text=True))
    [theirs] = set(others) - {own}
    assert person.get(f"/dev/mail/{theirs}").status_code == 404


def test_without_a_maildir_there_are_no_mail_pages(app, login_as, monkeypatch):
    monkeypatch.setitem(app.config, "DEV_MAILDIR", None)
    assert login_as("bureau").get("/dev/mail/").status_code == 404


def test_the_mail_pages_ask_to_log_in(client, catcher):
    assert client.get("/dev/mail/").status_code == 401


def test_every_message_says_when_it_was_written(app, session):
    message = enqueue_mail(session, to="a@example.com", locale="en", template="password_reset",
                           context={"name": "A", "path": "/reset/x", "minutes": 60})
    session.flush()
    assert render_mail(message)["Date"]
