"""Files of voucher applications and claims: PDF, JPEG or PNG, 10 MB each, told by their content (not
their name or the browser's word), an image at most Pillow's MAX_IMAGE_PIXELS (a decompression bomb is
refused from its header, never decoded), kept under UPLOAD_DIR/vouchers/ with random names.

Who may download: the enterprise that applied (its members), and the bureau and the auditor; for a
claim's files also the claiming platform's admins or enterprise's members, and the finance officer."""
from __future__ import annotations

import io
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import Actor, record_audit
from core.errors import Forbidden, NotFound, RuleBroken
from core.models import Role, User
from core.services import administers
from vouchers.models import Application, ApplicationState, Attachment, Claim, ClaimKind

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 20  # per application or claim
SUBDIR = "vouchers"
IMAGE_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
PDF = ("application/pdf", "pdf")


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as received: its name as the sender gave it and its bytes (read up to one byte past the limit)."""

    filename: str
    data: bytes


@dataclass(frozen=True, slots=True)
class CheckedFile:
    upload: Upload
    content_type: str
    extension: str


def check_upload(upload: Upload) -> CheckedFile:
    """Refuse what is too large or not a PDF, JPEG or PNG by its content (attachment_too_large,
    attachment_format)."""
    name = upload.filename or "?"
    if len(upload.data) > MAX_ATTACHMENT_BYTES:
        raise RuleBroken("attachment_too_large", _("%(name)s is larger than 10 MB.", name=name), field="attachments")
    if not upload.data:
        raise RuleBroken("attachment_format", _("%(name)s is empty.", name=name), field="attachments")
    if upload.data.startswith(b"%PDF-"):
        return CheckedFile(upload, *PDF)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(upload.data)) as image:  # reads the header only
                found = IMAGE_FORMATS.get(image.format or "")
                if found is not None:
                    image.verify()  # a truncated or corrupt image fails here
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise RuleBroken("attachment_too_many_pixels",
                         _("%(name)s has more pixels than an image may have (%(n)d million).",
                           name=name, n=Image.MAX_IMAGE_PIXELS // 1_000_000), field="attachments") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        found = None  # not an image at all: refused as any other content
    if found is not None:
        return CheckedFile(upload, *found)
    raise RuleBroken("attachment_format", _("%(name)s is not a PDF, JPEG or PNG file.", name=name),
                     field="attachments")


def path_of(upload_dir: Path, stored_name: str) -> Path:
    return upload_dir / SUBDIR / stored_name


def _clean_name(filename: str) -> str:
    """The sender's name for the download, without any path and cut to the column's length."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "attachment"
    return "".join(c for c in base if c.isprintable())[:255] or "attachment"


def ensure_may_attach_to_application(user: User, application: Application) -> None:
    if application.enterprise_id not in user.organisation_ids(Role.ENTERPRISE_MEMBER):
        raise Forbidden("forbidden", _("Only the applying enterprise adds files to its application."))
    if application.state != ApplicationState.SUBMITTED:
        raise RuleBroken("application_decided", _("The application has been decided: it takes no more files."),
                         field="attachments")


@dataclass(frozen=True, slots=True)
class SavedFile:
    checked: CheckedFile
    stored_name: str


@contextmanager
def saved(files: list[CheckedFile], upload_dir: Path) -> Iterator[list[SavedFile]]:
    """The checked files written under UPLOAD_DIR/vouchers/ with random names, for the block that records
    them (store) in its unit of work: written before the transaction begins, removed again if the block
    fails."""
    folder = upload_dir / SUBDIR
    folder.mkdir(parents=True, exist_ok=True)
    written: list[SavedFile] = []
    try:
        for checked in files:
            stored_name = f"{secrets.token_hex(16)}.{checked.extension}"
            path_of(upload_dir, stored_name).write_bytes(checked.upload.data)
            written.append(SavedFile(checked, stored_name))
        yield written
    except BaseException:
        for file in written:
            path_of(upload_dir, file.stored_name).unlink(missing_ok=True)
        raise


def store(session: Session, files: list[SavedFile], *, owner_type: str, owner_id: int, actor: Actor,
          user: User) -> list[Attachment]:
    """Record saved files for their owner (at most MAX_ATTACHMENTS each), with an audit entry each."""
    count = len(session.scalars(select(Attachment.id).where(Attachment.owner_type == owner_type,
                                                            Attachment.owner_id == owner_id)).all())
    if count + len(files) > MAX_ATTACHMENTS:
        raise RuleBroken("too_many_attachments", _("At most %(n)d files per application or claim.", n=MAX_ATTACHMENTS),
                         field="attachments")
    stored = [Attachment(owner_type=owner_type, owner_id=owner_id, stored_name=file.stored_name,
                         original_name=_clean_name(file.checked.upload.filename),
                         content_type=file.checked.content_type, size=len(file.checked.upload.data),
                         uploaded_by_id=user.id) for file in files]
    session.add_all(stored)
    session.flush()
    for attachment in stored:
        record_audit(session, actor, f"voucher_{owner_type}.file_added", attachment,
                     after={"owner_id": owner_id, "name": attachment.original_name, "size": attachment.size,
                            "content_type": attachment.content_type})
    return stored


def can_download(session: Session, user: User | None, attachment: Attachment) -> bool:
    if user is None:
        return False
    if user.has_role(Role.BUREAU_ADMIN, Role.AUDITOR):
        return True
    if attachment.owner_type == "application":
        application = session.get(Application, attachment.owner_id)
        return application is not None and application.enterprise_id in user.organisation_ids(Role.ENTERPRISE_MEMBER)
    claim = session.get(Claim, attachment.owner_id)
    if claim is None:
        return False
    if user.has_role(Role.FINANCE_OFFICER):
        return True
    if claim.kind == ClaimKind.PROVIDER:
        return administers(user, claim.platform_id)
    return claim.enterprise_id in user.organisation_ids(Role.ENTERPRISE_MEMBER)


def get_downloadable(session: Session, attachment_id: int, user: User | None) -> Attachment:
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or not can_download(session, user, attachment):
        raise NotFound("not_found", _("There is no such file."))
    return attachment
