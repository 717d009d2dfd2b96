"""A claim as files: XLSX (through core/exports.py, which guards against formula injection) and PDF with
Chinese text (fpdf2, embedding a subset of Noto Sans CJK SC from the system's fonts-noto-cjk).

Words are translated in the caller's language; names (enterprises, instruments) are as recorded."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from core.clock import to_local
from core.errors import KequipError
from core.exports import xlsx_bytes
from core.money import fen_to_yuan, format_yuan
from vouchers.claims.services import ClaimRow
from vouchers.models import CLAIM_STATE_LABELS, Claim, ClaimKind

# Where Debian's fonts-noto-cjk puts the font; CJK_FONT_PATH (config) may name another TTC/OTF/TTF.
FONT_CANDIDATES = (("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # index 2: Simplified Chinese
                   ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
                   ("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc", 2))
FONT = "kequip-cjk"


class FontMissing(KequipError):
    status = 503

    def __init__(self) -> None:
        super().__init__("pdf_font_missing", _(
            "The Chinese font for PDF files is not installed on the server (Debian package fonts-noto-cjk, "
            "or a font file named by CJK_FONT_PATH). The XLSX download works meanwhile."))


@dataclass(frozen=True, slots=True)
class ClaimDocument:
    """What both files show: the claim, its claimant's name and its lines."""

    claim: Claim
    claimant: str
    signed_by: str
    rows: list[ClaimRow]


def find_cjk_font() -> tuple[Path, int]:
    """(font file, index in a collection); FontMissing when none is there."""
    configured = current_app.config.get("CJK_FONT_PATH")
    candidates = ((configured, int(current_app.config.get("CJK_FONT_INDEX", 0))),) if configured else FONT_CANDIDATES
    for path, index in candidates:
        if Path(path).is_file():
            return Path(path), index
    raise FontMissing()


def _title(claim: Claim) -> str:
    return _("Innovation voucher redemption claim No. %(id)d", id=claim.id)


def _kind(claim: Claim) -> str:
    return _("Provider-redeemed (the platform claims)") if claim.kind == ClaimKind.PROVIDER \
        else _("Enterprise-reimbursed (the enterprise claims)")


def _when(value: datetime | None) -> str:
    return "" if value is None else to_local(value).strftime("%Y-%m-%d %H:%M")


def summary(document: ClaimDocument) -> list[tuple[str, str]]:
    claim = document.claim
    facts = [(_("Claim"), _title(claim)), (_("Mode"), _kind(claim)), (_("Claimant"), document.claimant),
             (_("Period"), f"{claim.period_start.isoformat()} – {claim.period_end.isoformat()}"),
             (_("State"), str(CLAIM_STATE_LABELS[claim.state])),
             (_("Voucher uses"), str(len(document.rows))), (_("Total"), format_yuan(claim.total_fen)),
             (_("Account name"), claim.bank_account_name), (_("Bank"), claim.bank_name),
             (_("Account number"), claim.bank_account_number),
             (_("Signed by"), f"{document.signed_by} · {_when(claim.signed_at)}")]
    if claim.review_note:
        facts.append((_("Review note"), claim.review_note))
    if claim.reviewed_at:
        facts.append((_("Reviewed"), _when(claim.reviewed_at)))
    if claim.paid_on:
        facts.append((_("Paid on"), f"{claim.paid_on.isoformat()} · {claim.payment_reference}"))
    return facts


def line_header() -> list[str]:
    return [_("Voucher"), _("Booking"), _("Enterprise"), _("Instrument"), _("Date of service"), _("Amount"),
            _("Returned because")]


def claim_xlsx(document: ClaimDocument) -> bytes:
    """Two sheets: the claim's facts and declaration, and its lines (amounts in yuan and in fen)."""
    facts = [*summary(document), (_("Declaration"), document.claim.declaration)]
    header = [*line_header()[:5], _("Amount (yuan)"), _("Amount (fen)"), line_header()[6]]
    lines = [[row.serial, row.booking_id, row.enterprise_name, row.instrument_name, row.served_on.isoformat(),
              fen_to_yuan(row.amount_fen), row.amount_fen, row.returned_reason or ""] for row in document.rows]
    lines.append([_("Total"), "", "", "", "", fen_to_yuan(document.claim.total_fen), document.claim.total_fen, ""])
    return xlsx_bytes([(_("Claim"), [_("Field"), _("Value")], facts), (_("Voucher uses"), header, lines)])


def claim_pdf(document: ClaimDocument) -> bytes:
    """An A4 page (or more) with the facts, the lines, the total and the signed declaration."""
    font_path, index = find_cjk_font()
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(_title(document.claim))
    pdf.set_creator("Kequip")
    pdf.add_font(FONT, fname=str(font_path), collection_font_number=index)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(FONT, size=15)
    pdf.cell(0, 10, _title(document.claim), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="C")
    pdf.set_font(FONT, size=9.5)
    plain = FontFace(emphasis="", fill_color=(235, 235, 235))
    with pdf.table(col_widths=(35, 145), first_row_as_headings=False, line_height=6) as table:
        for label, value in summary(document):
            row = table.row()
            row.cell(label, style=plain)
            row.cell(value)
    pdf.ln(4)
    with pdf.table(col_widths=(30, 14, 36, 42, 22, 22, 24), headings_style=plain,
                   text_align=("LEFT", "RIGHT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT"), line_height=5.5,
                   ) as table:
        table.row(line_header())
        for line in document.rows:
            table.row([line.serial, str(line.booking_id), line.enterprise_name,
                       f"{line.instrument_name} ({line.asset_number})" if line.asset_number else line.instrument_name,
                       line.served_on.isoformat(), format_yuan(line.amount_fen), line.returned_reason or ""])
        total = table.row()
        total.cell(_("Total"), colspan=5, style=plain)
        total.cell(format_yuan(document.claim.total_fen), align="RIGHT")
        total.cell("")
    pdf.ln(5)
    pdf.set_font(FONT, size=10.5)
    pdf.cell(0, 7, _("Declaration"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=9.5)
    pdf.multi_cell(0, 5.5, document.claim.declaration, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.cell(0, 6, _("Signed by %(name)s on %(when)s", name=document.signed_by, when=_when(document.claim.signed_at)),
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
