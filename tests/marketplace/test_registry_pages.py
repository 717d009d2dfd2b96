"""The registry as platform admins and the bureau use it through pages."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from core.errors import RuleBroken
from core.models import AuditEntry, Platform
from marketplace.registry import services
from marketplace.registry.models import Instrument, InstrumentState
from tests.images import png_claiming

S = InstrumentState


def form_data(session, **changes) -> dict:
    return {"asset_number": "KQ-P-001", "name_zh": "扫描电子显微镜", "name_en": "Scanning electron microscope",
            "model": "Regulus 8100", "manufacturer": "日立 Hitachi", "country_of_origin": "日本",
            "category_id": str(services.category_by_code(session, "0104").id), "original_value_fen": "3500000.00",
            "purchased_on": "2023-05-18", "is_publicly_funded": "y", "building": "B 楼", "room": "105",
            "description": "冷场发射扫描电镜", "capabilities": "形貌观察\n能谱分析\n", "sample_requirements": "干燥固体",
            "contact_name": "王工", "contact_phone": "0575-1", "contact_email": "sem@example.com", "sharing_mode": "open",
            "setup_fee_own_staff_fen": "0", "hourly_rate_own_staff_fen": "150",
            "setup_fee_district_enterprise_fen": "50", "hourly_rate_district_enterprise_fen": "300.5",
            "setup_fee_other_fen": "100", "hourly_rate_other_fen": "450"} | changes


def test_platform_admin_registers_and_submits_an_instrument(login_as, session):
    client = login_as("platform")
    response = client.post("/instruments/new", data=form_data(session, save_and_submit="y"))
    assert response.status_code == 302
    instrument = session.scalar(select(Instrument).where(Instrument.model == "Regulus 8100"))
    assert instrument.state == S.SUBMITTED
    assert (instrument.original_value_fen, instrument.hourly_rate_district_enterprise_fen) == (350_000_000, 30_050)
    assert instrument.capabilities == ["形貌观察", "能谱分析"]
    listing = client.get("/instruments/mine").get_data(as_text=True)
    assert "扫描电子显微镜" in listing


@pytest.mark.parametrize("field, value", [("original_value_fen", "0"), ("original_value_fen", "12.345"),
                                          ("original_value_fen", "1e26"), ("original_value_fen", "1e999999999"),
                                          ("hourly_rate_other_fen", "-1"), ("hourly_rate_other_fen", "-1e26"),
                                          ("name_zh", ""), ("category_id", "1")])
def test_bad_fields_show_beside_them_and_nothing_is_saved(login_as, session, field, value):
    response = login_as("platform").post("/instruments/new", data=form_data(session, **{field: value}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "is-invalid" in html
    assert session.scalar(select(Instrument).where(Instrument.model == "Regulus 8100")) is None


def test_bureau_reviews_the_queue_sees_the_diff_and_publishes(login_as, session, create_instrument, demo_user):
    new = create_instrument(state=S.SUBMITTED, name_zh="激光共聚焦显微镜")
    changed = create_instrument(state=S.PUBLISHED)
    admin = demo_user("platform")
    login_as("platform").post(f"/instruments/{changed.id}/edit", data=form_data(
        session, asset_number=changed.asset_number, model=changed.model, name_zh="改名后的质谱仪",
        category_id=str(changed.category_id)))
    session.refresh(changed)
    assert changed.name_zh != "改名后的质谱仪" and changed.pending_changes["name_zh"] == "改名后的质谱仪"
    bureau = login_as("bureau")
    queue = bureau.get("/review").get_data(as_text=True)
    assert "激光共聚焦显微镜" in queue and changed.name_zh in queue
    diff = bureau.get(f"/review/{changed.id}").get_data(as_text=True)
    assert "改名后的质谱仪" in diff and "table-warning" in diff
    assert bureau.post("/review/bulk-publish", data={"instrument_id": [str(new.id), str(changed.id)]}).status_code == 302
    session.refresh(new)
    session.refresh(changed)
    assert new.state == S.PUBLISHED and changed.name_zh == "改名后的质谱仪" and changed.pending_changes is None
    assert admin.id  # the platform admin's view of the outcome:
    assert "改名后的质谱仪" in login_as("platform").get("/instruments/mine").get_data(as_text=True)


def test_a_change_whose_asset_number_was_taken_meanwhile_is_refused_with_a_message(login_as, session,
                                                                                    create_instrument):
    published = create_instrument(state=S.PUBLISHED)
    login_as("platform").post(f"/instruments/{published.id}/edit", data=form_data(
        session, asset_number="KQ-NEW-1", model=published.model, category_id=str(published.category_id)))
    create_instrument(asset_number="KQ-NEW-1", model=published.model)  # registered while the change waits
    bureau = login_as("bureau")
    bureau.get("/review?lang=en")
    response = bureau.post(f"/review/{published.id}/publish", follow_redirects=True)
    assert response.status_code == 200
    assert "This platform has an instrument of this model and asset number already." in response.get_data(as_text=True)
    session.refresh(published)
    assert published.asset_number != "KQ-NEW-1" and published.pending_changes["asset_number"] == "KQ-NEW-1"


def test_bureau_rejects_with_a_reason_the_platform_sees(login_as, session, create_instrument):
    instrument = create_instrument(state=S.SUBMITTED)
    bureau = login_as("bureau")
    assert bureau.post(f"/review/{instrument.id}/reject", data={"reason": ""}).status_code == 422
    assert bureau.post(f"/review/{instrument.id}/reject", data={"reason": "请补充照片"}).status_code == 302
    session.refresh(instrument)
    assert instrument.state == S.REJECTED
    assert "请补充照片" in login_as("platform").get("/instruments/mine").get_data(as_text=True)


def test_review_queue_filters_by_platform_category_and_age(login_as, session, create_instrument):
    create_instrument(state=S.SUBMITTED, name_zh="差示扫描量热仪", category_id=services.category_by_code(session, "0108").id)
    create_instrument(state=S.SUBMITTED, name_zh="气相色谱仪", category_id=services.category_by_code(session, "0103").id)
    bureau = login_as("bureau")
    by_category = bureau.get("/review?category=0108").get_data(as_text=True)
    assert "差示扫描量热仪" in by_category and "气相色谱仪" not in by_category
    assert "气相色谱仪" in bureau.get("/review?category=01").get_data(as_text=True)
    assert "气相色谱仪" not in bureau.get("/review?older_than_days=7").get_data(as_text=True)
    other = session.scalar(select(Platform.id).order_by(Platform.id.desc()))
    assert "气相色谱仪" not in bureau.get(f"/review?platform_id={other}").get_data(as_text=True)


def test_maintenance_and_retirement_buttons(login_as, session, create_instrument):
    instrument = create_instrument(state=S.PUBLISHED)
    client = login_as("platform")
    client.post(f"/instruments/{instrument.id}/maintenance")
    session.refresh(instrument)
    assert instrument.state == S.MAINTENANCE
    client.post(f"/instruments/{instrument.id}/resume")
    client.post(f"/instruments/{instrument.id}/retire")
    session.refresh(instrument)
    assert instrument.state == S.RETIRED
    page = client.post(f"/instruments/{instrument.id}/submit", follow_redirects=True).get_data(as_text=True)
    assert "alert-danger" in page


def test_other_roles_cannot_use_registry_pages(login_as, create_instrument):
    instrument = create_instrument(state=S.SUBMITTED)
    assert login_as("enterprise").get("/instruments/mine").status_code == 403
    assert login_as("platform").post(f"/review/{instrument.id}/publish").status_code == 403
    assert login_as("operator").get(f"/instruments/{instrument.id}/edit").status_code == 403


def _image(fmt: str, size=(2400, 1200), exif: bool = False) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    kwargs = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        kwargs["exif"] = data
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_photos_are_resized_reencoded_and_stripped_of_exif(app, login_as, session, create_instrument):
    instrument = create_instrument()
    client = login_as("platform")
    response = client.post(f"/instruments/{instrument.id}/photos",
                           data={"photo": (io.BytesIO(_image("JPEG", exif=True)), "p.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 302
    session.refresh(instrument)
    photo = instrument.photos[0]
    assert max(photo.width, photo.height) == 1600
    with Image.open(Path(app.config["UPLOAD_DIR"]) / "instruments" / photo.stored_name) as stored:
        assert stored.format == "JPEG" and not stored.getexif()


@pytest.mark.parametrize("payload, name", [(b"GIF89a" + b"0" * 100, "x.gif"), (b"not an image", "x.png"),
                                           (b"%PDF-1.4", "x.jpg")])
def test_other_files_are_refused_as_photos(login_as, session, create_instrument, payload, name):
    instrument = create_instrument()
    page = login_as("platform").post(f"/instruments/{instrument.id}/photos", data={"photo": (io.BytesIO(payload), name)},
                                     content_type="multipart/form-data", follow_redirects=True)
    assert "alert-danger" in page.get_data(as_text=True)
    session.refresh(instrument)
    assert instrument.photos == []


@pytest.mark.parametrize("payload, code", [
    (lambda: _image("PNG", (4000, 2500)), "photo_too_many_pixels"),  # 10 MP: a PNG is decoded whole
    (lambda: png_claiming(20_000, 20_000), "photo_too_many_pixels"),  # 400 MP claimed: Pillow's own bomb limit
    (lambda: png_claiming(3_000, 3_000), "photo_too_many_pixels"),  # 9 MP claimed in 100 bytes
    (lambda: b"\xff\xd8\xff" + bytes(services.MAX_PHOTO_BYTES), "photo_too_large"),
], ids=["png-10MP", "png-claims-400MP", "png-claims-9MP", "over-10MB"])
def test_photos_beyond_their_limits_are_refused_before_decoding(session, create_instrument, payload, code):
    with pytest.raises(RuleBroken) as refused:
        services.prepare_photo(payload())
    assert refused.value.code == code and refused.value.field == "photo" and refused.value.message


def test_a_24_megapixel_jpeg_is_taken_and_stored_at_1600_px(session):
    photo = services.prepare_photo(_image("JPEG", (6000, 4000)))
    assert (photo.width, photo.height) == (1600, 1067)


def test_a_refused_photo_is_shown_on_the_page_and_nothing_is_stored(login_as, session, create_instrument):
    instrument = create_instrument()
    page = login_as("platform").post(f"/instruments/{instrument.id}/photos",
                                     data={"photo": (io.BytesIO(png_claiming(20_000, 20_000)), "bomb.png")},
                                     content_type="multipart/form-data", follow_redirects=True)
    assert page.status_code == 200 and "alert-danger" in page.get_data(as_text=True)
    session.refresh(instrument)
    assert instrument.photos == []


def test_a_photo_is_decoded_with_no_transaction_open(login_as, session, create_instrument, transaction_spy):
    instrument = create_instrument()
    transaction_spy.watch(services, "prepare_photo")
    response = login_as("platform").post(f"/instruments/{instrument.id}/photos",
                                         data={"photo": (io.BytesIO(_image("PNG", (64, 64))), "p.png")},
                                         content_type="multipart/form-data")
    assert response.status_code == 302 and transaction_spy.open_at_calls == [False]
    session.refresh(instrument)
    assert len(instrument.photos) == 1


def test_at_most_eight_photos(app, session, create_instrument, demo_user, tmp_path):
    from core.audit import Actor

    instrument = create_instrument()
    admin = demo_user("platform")
    for _ in range(8):
        services.add_photo(session, instrument, admin, actor=Actor.of(admin, None),
                           photo=services.prepare_photo(_image("PNG", (50, 50))), upload_dir=tmp_path)
    with pytest.raises(Exception) as refused:
        services.add_photo(session, instrument, admin, actor=Actor.of(admin, None),
                           photo=services.prepare_photo(_image("WEBP", (50, 50))), upload_dir=tmp_path)
    assert getattr(refused.value, "code", None) == "too_many_photos"


def test_odd_page_numbers_and_ids_are_answered_without_a_server_error(login_as, create_instrument):
    platform, bureau = login_as("platform"), login_as("bureau")
    assert platform.get("/instruments/mine?page=99999999999999999999").status_code == 200
    assert bureau.get("/review?page=99999999999999999999").status_code == 200
    for choice in ("platform_id", "older_than_days"):  # not among the choices: no filter, not a 500
        assert bureau.get(f"/review?{choice}=99999999999999999999").status_code == 200
    assert platform.get("/instruments/99999999999999999999/edit").status_code == 404
    assert bureau.get("/review/99999999999999999999").status_code == 404
    submitted = create_instrument(state=S.SUBMITTED)
    for odd in ("\u00b2", "99999999999999999999"):  # "²" passes str.isdigit() but not int()
        response = bureau.post("/review/bulk-publish", data={"instrument_id": [odd, str(submitted.id)]})
        assert response.status_code == 302


def test_removing_a_photo_removes_the_record_and_the_file(app, login_as, session, create_instrument):
    instrument = create_instrument()
    client = login_as("platform")
    client.post(f"/instruments/{instrument.id}/photos", data={"photo": (io.BytesIO(_image("PNG", (64, 64))), "p.png")},
                content_type="multipart/form-data")
    session.refresh(instrument)
    photo = instrument.photos[0]
    stored = Path(app.config["UPLOAD_DIR"]) / "instruments" / photo.stored_name
    assert stored.exists()
    assert login_as("operator").post(f"/instruments/photos/{photo.id}/delete").status_code == 403
    assert client.post(f"/instruments/photos/{photo.id}/delete").status_code == 302
    session.expire_all()
    assert session.get(Instrument, instrument.id).photos == [] and not stored.exists()


def test_the_review_page_shows_every_field_and_the_photos(login_as, session, create_instrument):
    instrument = create_instrument(state=S.SUBMITTED, asset_number="KQ-REVIEW-77", building="C 楼")
    login_as("platform").post(f"/instruments/{instrument.id}/photos",
                              data={"photo": (io.BytesIO(_image("PNG", (64, 64))), "p.png")},
                              content_type="multipart/form-data")
    session.refresh(instrument)
    bureau = login_as("bureau")
    html = bureau.get(f"/review/{instrument.id}").get_data(as_text=True)
    assert "KQ-REVIEW-77" in html and "C 楼" in html
    photo_url = f"/instruments/photos/{instrument.photos[0].stored_name}"
    assert f'src="{photo_url}"' in html
    with bureau.get(photo_url) as photo:
        assert photo.status_code == 200


def test_the_review_queue_has_a_select_all_box(login_as, create_instrument):
    create_instrument(state=S.SUBMITTED)
    html = login_as("bureau").get("/review").get_data(as_text=True)
    assert 'data-select-all="instrument_id"' in html and "/static/js/select-all.js" in html


def test_the_platform_searches_its_instruments(login_as, create_instrument):
    create_instrument(name_zh="激光粒度仪", model="Mastersizer 3000", asset_number="KQ-SEARCH-1")
    create_instrument(name_zh="原子力显微镜", model="Dimension Icon", asset_number="KQ-SEARCH-2")
    client = login_as("platform")
    for query in ("粒度", "mastersizer", "SEARCH-1"):
        html = client.get("/instruments/mine", query_string={"q": query}).get_data(as_text=True)
        assert "激光粒度仪" in html and "原子力显微镜" not in html, query
    assert "原子力显微镜" not in client.get("/instruments/mine?q=100%25").get_data(as_text=True)
    html = client.get("/instruments/mine", query_string={"q": "KQ-SEARCH"}).get_data(as_text=True)
    assert "激光粒度仪" in html and "原子力显微镜" in html and "/static/js/select-all.js" in html


def test_the_platform_submits_the_chosen_drafts_at_once(login_as, session, create_instrument):
    draft, rejected, left = create_instrument(), create_instrument(state=S.REJECTED), create_instrument()
    client = login_as("platform")
    response = client.post("/instruments/bulk-submit", data={"instrument_id": [str(draft.id), str(rejected.id)]})
    assert response.status_code == 302
    session.expire_all()
    assert [session.get(Instrument, i.id).state for i in (draft, rejected, left)] == [S.SUBMITTED, S.SUBMITTED, S.DRAFT]
    audited = session.scalars(select(AuditEntry.subject_id).where(AuditEntry.action == "instrument.submitted",
                                                                  AuditEntry.subject_type == "instruments")).all()
    assert {draft.id, rejected.id} <= set(audited) and left.id not in audited


def test_a_bulk_submit_with_one_refused_instrument_submits_none(login_as, session, create_instrument):
    draft, published = create_instrument(), create_instrument(state=S.PUBLISHED)
    client = login_as("platform")
    response = client.post("/instruments/bulk-submit", data={"instrument_id": [str(draft.id), str(published.id)]},
                           follow_redirects=True)
    assert response.status_code == 200 and "alert-danger" in response.get_data(as_text=True)
    assert client.post("/instruments/bulk-submit", data={"instrument_id": ["x", "0"]}).status_code == 302
    assert login_as("operator").post("/instruments/bulk-submit", data={"instrument_id": [str(draft.id)]}).status_code == 403
    session.expire_all()
    assert session.get(Instrument, draft.id).state == S.DRAFT
