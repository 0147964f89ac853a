"""The printable sanitization certificate (W-4): one A4 page rendered with reportlab.

The PDF is a rendering for people; the signed JSON document is the proof. The page says
so, and carries the body's SHA-256 and the signature so that a printout can be matched
with the document it came from.
"""

from __future__ import annotations

import hashlib
import io
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import serialization
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, PropertySet, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from mfpsecd.core import wipe_certificate as cert

_GRID = TableStyle([
    ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
    ("FONTSIZE", (0, 0), (-1, -1), 9),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
])


def _cell(text: str, style: ParagraphStyle) -> Paragraph:
    # Model and serial strings come from the device: escaped, never markup.
    return Paragraph(escape(text) or "-", style)


def _table(rows: list[tuple[str, str]], style: ParagraphStyle) -> Table:
    table = Table([[label, _cell(value, style)] for label, value in rows],
                  colWidths=[42 * mm, 128 * mm])
    table.setStyle(_GRID)
    return table


def _key_fingerprint(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _purge_flow(p: cert.Purge | None, heading: PropertySet, body: ParagraphStyle
                ) -> list[Flowable]:
    if p is None:
        return []
    rows = [("Requested", p.requested),
            ("Achieved", p.achieved + (f" ({p.shortfall})" if p.shortfall else "")),
            ("Method", p.method + (" (whole device)" if p.whole_device else "")),
            ("Expected", p.expect)]
    rows += [("Not possible", f"{s.method}: {s.reason}") for s in p.skipped]
    rows += [("Device said", said) for said in p.device_said]
    if p.confirmed_by:
        rows.append(("Confirmed by", p.confirmed_by))
    e = p.evidence
    rows.append(("Evidence", "; ".join([f"{e.transport}, rotational {e.rotational}",
                                        *e.facts])))
    rows += [("Not read", problem) for problem in e.problems]
    return [Paragraph("Purge plan", heading), _table(rows, body)]


def render_pdf(doc: cert.CertificateDocument) -> bytes:
    c = doc.certificate
    m, meth, v, op = c.media, c.method, c.verification, c.operator
    styles = getSampleStyleSheet()
    body = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=9, leading=11)
    mono = ParagraphStyle("mono", parent=body, fontName="Courier", fontSize=7, leading=9,
                          wordWrap="CJK")
    out = io.BytesIO()
    page = SimpleDocTemplate(out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                             topMargin=18 * mm, bottomMargin=18 * mm,
                             title=f"Sanitization certificate {c.id}", author=c.device,
                             subject="NIST SP 800-88 Rev.1 sanitization certificate",
                             creator=meth.tool, invariant=True)
    flow: list[Flowable] = [
        Paragraph("Sanitization certificate", styles["Title"]),
        Paragraph("NIST SP 800-88 Rev.1, Appendix G", styles["Italic"]),
        Spacer(1, 4 * mm),
        _table([("Certificate", c.id), ("Device", c.device), ("Result", c.result.upper())],
               body),
        Spacer(1, 4 * mm),
        Paragraph("Media", styles["Heading3"]),
        _table([("Id", m.id), ("Type", f"{m.type} ({m.transport})"), ("Model", m.model),
                ("Serial", m.serial), ("Size", f"{m.size_bytes} bytes")], body),
        Paragraph("Sanitization", styles["Heading3"]),
        _table([("Category", meth.category), ("Technique", meth.technique),
                ("Mode asked", str(meth.mode)), ("Applied", meth.standard),
                ("Passes", ", ".join(meth.passes)), ("Why", meth.reason),
                ("Tool", meth.tool)], body),
        *_purge_flow(c.purge, styles["Heading3"], body),
        Paragraph("Verification", styles["Heading3"]),
        _table([("Method", v.method), ("Result", v.result)], body),
        Paragraph("Operation", styles["Heading3"]),
        _table([("Operator", f"{op.user or '-'} ({op.role or op.origin})"),
                ("Started", c.started), ("Ended", c.ended),
                ("Resumed", f"{c.resumed} time(s) after a restart")], body),
        Paragraph("Signature", styles["Heading3"]),
        _table([("Algorithm", doc.signature.alg),
                ("Body SHA-256", cert.digest(c).hex()),
                ("Signer key SHA-256", _key_fingerprint(doc.signature.public_key)),
                ("Value", doc.signature.value)], mono),
        Spacer(1, 4 * mm),
        Paragraph("This page is a rendering. The signed JSON document is the proof: check "
                  "it with <font face='Courier'>mfpsec wipe verify-cert FILE</font>.",
                  body),
    ]
    page.build(flow)
    return out.getvalue()
