"""Applying and issuing through the pages: an enterprise member applies with files, the bureau approves
(possibly less than asked) or rejects; refusals for a closed window, an unverified enterprise, an invalid
credit code; the pool is never passed and one controller group shares one yearly cap; files are taken by
their content and shown only to the applicant and the bureau."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext
from PIL import Image
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from core.clock import to_local
from core.db import utcnow
from core.errors import RuleBroken
from tests.images import png_claiming
from tests.vouchers.conftest import enterprise_of, page_of
from vouchers import attachments
from vouchers.models import Application, ApplicationState, Attachment, Programme, Voucher

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "PNG")
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, "JPEG")
    return out.getvalue()


def said(app, msgid: str, **values) -> str:
    """A message as the pages show it: in Chinese, the default language (the msgid while untranslated)."""
    with app.test_request_context(), force_locale("zh_CN"):
        return gettext(msgid, **values)


def application_form(**changes) -> dict:
    return {"requested_fen": "20000.00", "purpose": "新材料成分与力学性能检测", "planned_instruments": "扫描电镜\n万能试验机"} \
        | changes


def applications_of(session, programme: Programme) -> list[Application]:
    return list(session.scalars(select(Application).where(Application.programme_id == programme.id)))


def test_an_enterprise_member_applies_with_files(app, login_as, session, demo_user, create_programme):
    programme = create_programme()
    client = login_as("enterprise")
    assert client.get("/voucher-programmes/open").status_code == 200
    assert client.get(f"/voucher-programmes/{programme.id}/apply").status_code == 200
    response = client.post(f"/voucher-programmes/{programme.id}/apply", content_type="multipart/form-data",
                           data=application_form(attachments=[(io.BytesIO(PDF), "营业执照.pdf"),
                                                              (io.BytesIO(png_bytes()), "../../etc/照片.png")]))
    assert response.status_code == 302
    [application] = applications_of(session, programme)
    assert (application.requested_fen, application.state) == (2_000_000, ApplicationState.SUBMITTED)
    assert application.enterprise_id == enterprise_of(demo_user("enterprise")).id
    assert application.planned_instruments == "扫描电镜\n万能试验机"
    names = sorted((a.original_name, a.content_type) for a in application.attachments)
    assert names == [("照片.png", "image/png"), ("营业执照.pdf", "application/pdf")]
    for attachment in application.attachments:
        stored = Path(app.config["UPLOAD_DIR"]) / "vouchers" / attachment.stored_name
        assert stored.is_file() and attachment.original_name not in attachment.stored_name
    page = page_of(client.get(f"/voucher-applications/{application.id}"))
    assert "营业执照.pdf" in page.one("attachments")["text"]
    mine = page_of(client.get("/my/voucher-applications"))
    assert len(mine.all("application-row")) == 1


def test_an_image_claiming_more_pixels_than_allowed_is_refused_from_its_header(app):
    with app.test_request_context():
        with pytest.raises(RuleBroken) as refused:
            attachments.check_upload(attachments.Upload("scan.png", png_claiming(20_000, 20_000)))
    assert (refused.value.code, refused.value.field) == ("attachment_too_many_pixels", "attachments")
    assert "scan.png" in refused.value.message


@pytest.mark.parametrize("name, data, message", [
    ("fake.pdf", b"just some text, not a PDF", "%(name)s is not a PDF, JPEG or PNG file."),
    ("picture.png", b"GIF89a" + b"\x00" * 40, "%(name)s is not a PDF, JPEG or PNG file."),
    ("empty.pdf", b"", "%(name)s is empty."),
    ("huge.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), "%(name)s is larger than 10 MB."),
])
def test_files_are_refused_by_content_and_size_and_nothing_is_kept(app, login_as, session, create_programme, name,
                                                                   data, message):
    programme = create_programme()
    folder = Path(app.config["UPLOAD_DIR"]) / "vouchers"
    before = set(folder.iterdir()) if folder.exists() else set()
    # the body is built in memory: the test client would spool a large one to a file it never closes
    boundary, body = encode_multipart(MultiDict([*application_form().items(), ("attachments", FileStorage(
        io.BytesIO(PDF), "good.pdf")), ("attachments", FileStorage(io.BytesIO(data), name))]))
    response = login_as("enterprise").post(f"/voucher-programmes/{programme.id}/apply", data=body,
                                           content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 422
    page = page_of(response)
    assert page.invalid == {"attachments"} and said(app, message, name=name) in response.get_data(as_text=True)
    assert applications_of(session, programme) == []
    assert (set(folder.iterdir()) if folder.exists() else set()) == before


def test_a_jpeg_is_taken_and_files_can_be_added_while_in_review(login_as, session, apply_for):
    application = apply_for()
    client = login_as("enterprise")
    response = client.post(f"/voucher-applications/{application.id}/attachments", content_type="multipart/form-data",
                           data={"attachments": [(io.BytesIO(jpeg_bytes()), "发票.jpg")]})
    assert response.status_code == 302
    [attachment] = session.scalars(select(Attachment).where(Attachment.owner_id == application.id)).all()
    assert (attachment.original_name, attachment.content_type) == ("发票.jpg", "image/jpeg")


def test_files_are_checked_and_written_with_no_transaction_open_and_removed_when_refused(
        app, login_as, session, apply_for, transaction_spy):
    application = apply_for()
    folder = Path(app.config["UPLOAD_DIR"]) / "vouchers"
    before = set(folder.iterdir()) if folder.exists() else set()
    transaction_spy.watch(attachments, "check_upload")
    too_many = [(io.BytesIO(PDF), f"{n}.pdf") for n in range(attachments.MAX_ATTACHMENTS + 1)]
    response = login_as("enterprise").post(f"/voucher-applications/{application.id}/attachments",
                                           content_type="multipart/form-data", data={"attachments": too_many})
    assert response.status_code == 302 and not any(transaction_spy.open_at_calls)
    assert len(transaction_spy.open_at_calls) == attachments.MAX_ATTACHMENTS + 1
    # written before the unit of work, which refused them (too_many_attachments): removed again
    assert session.scalars(select(Attachment).where(Attachment.owner_id == application.id)).all() == []
    assert (set(folder.iterdir()) if folder.exists() else set()) == before


def test_files_download_for_the_applicant_and_the_bureau_and_no_one_else(login_as, session, create_member, apply_for):
    application = apply_for()
    login_as("enterprise").post(f"/voucher-applications/{application.id}/attachments",
                                content_type="multipart/form-data",
                                data={"attachments": [(io.BytesIO(PDF), "报告.pdf")]})
    attachment = session.scalar(select(Attachment).where(Attachment.owner_id == application.id))
    url = f"/voucher-attachments/{attachment.id}"
    for who in ("enterprise", "bureau", "auditor"):
        response = login_as(who).get(url)
        assert response.status_code == 200 and response.data == PDF, who
        assert response.mimetype == "application/pdf" and response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("attachment")
    stranger = create_member()
    for who in ("platform", "operator", "finance", stranger.email):
        assert login_as(who).get(url).status_code == 404, who
    assert login_as("bureau").get("/voucher-attachments/999999").status_code == 404


def test_others_cannot_add_files_and_a_decided_application_takes_none(login_as, session, demo_user, create_member,
                                                                     apply_for, issue_voucher):
    application = apply_for()
    stranger = create_member()
    def files():
        return {"attachments": [(io.BytesIO(PDF), "x.pdf")]}

    assert login_as(stranger.email).post(f"/voucher-applications/{application.id}/attachments",
                                         content_type="multipart/form-data", data=files()).status_code == 404
    assert login_as("bureau").post(f"/voucher-applications/{application.id}/attachments",
                                   content_type="multipart/form-data", data=files()).status_code == 403
    decided = session.get(Application, issue_voucher().application_id)
    login_as("enterprise").post(f"/voucher-applications/{decided.id}/attachments", content_type="multipart/form-data",
                                data={"attachments": [(io.BytesIO(PDF), "late.pdf")]})
    assert session.scalars(select(Attachment).where(Attachment.owner_id.in_([application.id, decided.id]))).all() \
        == []


@pytest.mark.parametrize("window", ["past", "future"])
def test_applying_is_refused_when_the_window_is_closed(app, login_as, session, create_programme, window):
    today = to_local(utcnow()).date()
    days = [-20, -1] if window == "past" else [1, 20]
    programme = create_programme(applications_open_on=today + timedelta(days=days[0]),
                                 applications_close_on=today + timedelta(days=days[1]))
    client = login_as("enterprise")
    assert page_of(client.get(f"/voucher-programmes/{programme.id}/apply")).all("closed")
    response = client.post(f"/voucher-programmes/{programme.id}/apply", data=application_form())
    assert response.status_code == 422
    assert said(app, "This programme takes no applications now.") in response.get_data(as_text=True)
    assert applications_of(session, programme) == []
    assert programme.name not in client.get("/voucher-programmes/open").get_data(as_text=True)


@pytest.mark.parametrize("enterprise", [{"verified": False}, {"credit_code": "91330621MA2000999X"}])
def test_applying_is_refused_for_an_unverified_enterprise_or_an_invalid_credit_code(app, login_as, session,
                                                                                    create_member, create_programme,
                                                                                    enterprise):
    programme = create_programme()
    member = create_member(**enterprise)
    response = login_as(member.email).post(f"/voucher-programmes/{programme.id}/apply", data=application_form())
    assert response.status_code == 422
    assert said(app, "Your enterprise's unified social credit code must be valid and verified by the bureau before "
                     "it applies.") in response.get_data(as_text=True)
    assert applications_of(session, programme) == []


def test_a_second_application_waits_for_the_first(login_as, session, create_programme, apply_for):
    programme = create_programme()
    apply_for(programme=programme)
    response = login_as("enterprise").post(f"/voucher-programmes/{programme.id}/apply", data=application_form())
    assert response.status_code == 422 and len(applications_of(session, programme)) == 1


def test_the_bureau_approves_less_than_asked_and_a_voucher_is_issued(login_as, session, apply_for):
    application = apply_for(requested_fen=200_00)
    client = login_as("bureau")
    queue = page_of(client.get("/voucher-applications"))
    assert [row["data-id"] for row in queue.all("application-row")][:1] == [str(application.id)]
    response = client.post(f"/voucher-applications/{application.id}/approve",
                           data={f"a{application.id}-amount_fen": "150.55"})
    assert response.status_code == 302
    session.refresh(application)
    voucher = session.scalar(select(Voucher).where(Voucher.application_id == application.id))
    assert (application.state, application.approved_fen) == (ApplicationState.APPROVED, 150_55)
    assert (voucher.amount_fen, voucher.balance_fen) == (150_55, 150_55)
    assert voucher.serial == f"KQ{application.programme.year}-{application.id:06d}"
    assert voucher.expires_at - voucher.issued_at == timedelta(days=application.programme.validity_days)
    detail = page_of(client.get(f"/voucher-applications/{application.id}"))
    assert detail.one("voucher-link")["text"] == voucher.serial


def test_approving_more_than_asked_is_refused(login_as, session, apply_for):
    application = apply_for(requested_fen=200_00)
    login_as("bureau").post(f"/voucher-applications/{application.id}/approve",
                            data={f"a{application.id}-amount_fen": "200.01"})
    session.refresh(application)
    assert application.state == ApplicationState.SUBMITTED


def test_the_bureau_rejects_with_a_reason(login_as, session, apply_for):
    application = apply_for()
    client = login_as("bureau")
    client.post(f"/voucher-applications/{application.id}/reject", data={f"r{application.id}-reason": ""})
    session.refresh(application)
    assert application.state == ApplicationState.SUBMITTED
    client.post(f"/voucher-applications/{application.id}/reject", data={f"r{application.id}-reason": "材料不全"})
    session.refresh(application)
    assert (application.state, application.decision_note) == (ApplicationState.REJECTED, "材料不全")
    page = page_of(login_as("enterprise").get(f"/voucher-applications/{application.id}"))
    assert page.text("decision-note") == "材料不全"


def test_the_pool_is_never_passed(app, login_as, session, create_programme, create_member, apply_for):
    programme = create_programme(pool_fen=100_00)
    first = apply_for(programme=programme, requested_fen=60_00)
    second = apply_for(user=create_member(), programme=programme, requested_fen=60_00)
    client = login_as("bureau")
    client.post(f"/voucher-applications/{first.id}/approve", data={f"a{first.id}-amount_fen": "60"})
    refused = client.post(f"/voucher-applications/{second.id}/approve", data={f"a{second.id}-amount_fen": "60"},
                          follow_redirects=True)
    assert said(app, "The programme's pool has only %(left)s left.", left="¥40.00") in refused.get_data(as_text=True)
    session.refresh(programme), session.refresh(second)
    assert (programme.issued_fen, second.state) == (60_00, ApplicationState.SUBMITTED)
    client.post(f"/voucher-applications/{second.id}/approve", data={f"a{second.id}-amount_fen": "40"})
    session.refresh(programme), session.refresh(second)
    assert (programme.issued_fen, second.approved_fen) == (100_00, 40_00)


def test_one_controller_group_shares_one_yearly_cap_and_the_bureau_sees_the_group(app, login_as, session,
                                                                                 create_member, create_programme,
                                                                                 apply_for):
    programme = create_programme(enterprise_year_cap_fen=100_00)
    sister, brother, outsider = (create_member(actual_controller="张三"), create_member(actual_controller=" 张三 "),
                                 create_member(actual_controller="李四"))
    enterprise_of(brother).actual_controller = "张三"
    first = apply_for(user=sister, programme=programme, requested_fen=70_00)
    second = apply_for(user=brother, programme=programme, requested_fen=70_00)
    third = apply_for(user=outsider, programme=programme, requested_fen=70_00)
    client = login_as("bureau")
    client.post(f"/voucher-applications/{first.id}/approve", data={f"a{first.id}-amount_fen": "70"})
    queue = page_of(client.get(f"/voucher-applications?programme_id={programme.id}&state=submitted"))
    rows = {row["data-id"]: row for row in queue.all("application-row")}
    assert set(rows) == {str(second.id), str(third.id)}
    groups = [g for g in queue.all("group-issued")]
    assert sorted(int(g["data-fen"]) for g in groups) == [0, 70_00]
    assert enterprise_of(sister).name in rows[str(second.id)]["text"]
    refused = client.post(f"/voucher-applications/{second.id}/approve", data={f"a{second.id}-amount_fen": "70"},
                          follow_redirects=True)
    assert said(app, "The enterprise's group has %(left)s left of its yearly cap.", left="¥30.00") \
        in refused.get_data(as_text=True)
    client.post(f"/voucher-applications/{second.id}/approve", data={f"a{second.id}-amount_fen": "30"})
    client.post(f"/voucher-applications/{third.id}/approve", data={f"a{third.id}-amount_fen": "70"})
    session.refresh(second), session.refresh(third)
    assert (second.approved_fen, third.approved_fen) == (30_00, 70_00)


def test_the_queue_filters_by_programme_and_state(login_as, session, create_programme, create_member, apply_for):
    one, two = create_programme(), create_programme()
    a = apply_for(programme=one)
    b = apply_for(user=create_member(), programme=two)
    client = login_as("bureau")

    def shown(query: str) -> set[str]:
        return {row["data-id"] for row in page_of(client.get(f"/voucher-applications?{query}")).all("application-row")}

    assert {str(a.id), str(b.id)} <= shown("")
    assert shown(f"programme_id={one.id}") == {str(a.id)}
    assert shown(f"programme_id={two.id}&state=approved") == set()
    assert shown("programme_id=abc&state=nonsense") >= {str(a.id), str(b.id)}  # bad filters are ignored


@pytest.mark.parametrize("who, status", [("enterprise", 403), ("platform", 403), ("finance", 200), ("auditor", 200)])
def test_the_queue_is_the_bureau_s_and_the_auditor_reads_it(login_as, apply_for, who, status):
    application = apply_for()
    response = login_as(who).get("/voucher-applications")
    assert response.status_code == status
    if status == 200:
        assert not page_of(response).all("decision-forms")
        assert not page_of(login_as(who).get(f"/voucher-applications/{application.id}")).all("decision-forms")


@pytest.mark.parametrize("who", ["enterprise", "auditor", "finance", "platform"])
def test_only_the_bureau_decides(login_as, session, apply_for, who):
    application = apply_for()
    client = login_as(who)
    assert client.post(f"/voucher-applications/{application.id}/approve",
                       data={f"a{application.id}-amount_fen": "1"}).status_code == 403
    assert client.post(f"/voucher-applications/{application.id}/reject",
                       data={f"r{application.id}-reason": "x"}).status_code == 403
    session.refresh(application)
    assert application.state == ApplicationState.SUBMITTED


def test_another_enterprise_s_application_does_not_exist_for_a_member(login_as, create_member, apply_for):
    application = apply_for()
    stranger = create_member()
    assert login_as(stranger.email).get(f"/voucher-applications/{application.id}").status_code == 404
    assert "application-row" not in login_as(stranger.email).get("/my/voucher-applications").get_data(as_text=True)
    assert login_as("platform").get(f"/voucher-applications/{application.id}").status_code == 403
