"""The printable sanitization certificate (W-4): one A4 page rendered with reportlab.

The PDF is a rendering for people; the signed JSON document is the proof. The page says
so, and carries the body's SHA-256 and the signature so that a printout can be matched
with the document it came from.
"""

from __future__ import annotations

import hashlib
import io
import sys
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import serialization
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, PropertySet, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from mfpsecd.wipe.model import certificate as cert

_GRID = TableStyle(
    [
        ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
    ]
)


def _cell(text: str, style: ParagraphStyle) -> Paragraph:
    # Model and serial strings come from the device: escaped, never markup.
    return Paragraph(escape(text) or "-", style)


def _table(rows: list[tuple[str, str]], style: ParagraphStyle) -> Table:
    table = Table(
        [[label, _cell(value, style)] for label, value in rows], colWidths=[42 * mm, 128 * mm]
    )
    table.setStyle(_GRID)
    return table


def _key_fingerprint(pem: str) -> str:
    key = serialization.load_pem_public_key(pem.encode())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _purge_flow(p: cert.Purge | None, heading: PropertySet, body: ParagraphStyle) -> list[Flowable]:
    if p is None:
        return []
    rows = [
        ("Requested", p.requested),
        ("Achieved", p.achieved + (f" ({p.shortfall})" if p.shortfall else "")),
        ("Method", p.method + (" (whole device)" if p.whole_device else "")),
        ("Expected", p.expect),
    ]
    rows += [("Not possible", f"{s.method}: {s.reason}") for s in p.skipped]
    rows += [("Device said", said) for said in p.device_said]
    if p.confirmed_by:
        rows.append(("Confirmed by", p.confirmed_by))
    e = p.evidence
    rows.append(("Evidence", "; ".join([f"{e.transport}, rotational {e.rotational}", *e.facts])))
    rows += [("Not read", problem) for problem in e.problems]
    return [Paragraph("Purge plan", heading), _table(rows, body)]


def _signature_lines(style: ParagraphStyle) -> Table:
    """Where the operator and a witness sign the printout (SP 800-88's record of
    sanitization is attested by people, not only by the device)."""
    line = "_" * 38
    table = Table(
        [
            [
                Paragraph("Operator: name, signature, date", style),
                Paragraph("Witness: name, signature, date", style),
            ],
            [line, line],
        ],
        colWidths=[85 * mm, 85 * mm],
        rowHeights=[6 * mm, 12 * mm],
    )
    table.setStyle(
        TableStyle([("FONTSIZE", (0, 0), (-1, -1), 8), ("VALIGN", (0, 1), (-1, 1), "BOTTOM")])
    )
    return table


def render_pdf(doc: cert.CertificateDocument) -> bytes:
    c = doc.certificate
    m, meth, v, op = c.media, c.method, c.verification, c.operator
    styles = getSampleStyleSheet()
    body = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=8, leading=9.5)
    # Compact headings: the whole record, signatures included, on one A4 page.
    section = ParagraphStyle("section", parent=styles["Heading4"], spaceBefore=5, spaceAfter=2)
    mono = ParagraphStyle(
        "mono", parent=body, fontName="Courier", fontSize=7, leading=9, wordWrap="CJK"
    )
    out = io.BytesIO()
    page = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"Sanitization certificate {c.id}",
        author=c.device,
        subject=f"Sanitization certificate ({cert.title(c)})",
        creator=meth.tool,
        invariant=True,
    )
    issuer = c.issuer
    device_rows = [("Device", c.device)]
    if issuer is not None:
        device_rows = [
            ("Device model", issuer.model),
            ("Device serial", issuer.serial),
            ("Identity key", issuer.identity),
            ("Board profile", issuer.board),
        ]
    outcome = [("Result", cert.result_text(c.result))]
    if c.error:
        outcome.append(("Why", c.error))
    flow: list[Flowable] = [
        Paragraph(
            "Sanitization certificate",
            ParagraphStyle("title", parent=styles["Title"], fontSize=16, spaceAfter=2),
        ),
        Paragraph(escape(cert.title(c)), styles["Italic"]),
        Spacer(1, 3 * mm),
        _table([("Certificate", c.id), *device_rows, *outcome], body),
        Spacer(1, 4 * mm),
        Paragraph("Media", section),
        _table(
            [
                ("Id", m.id),
                ("Type", f"{m.type} ({m.transport})"),
                ("Model", m.model),
                ("Serial", m.serial),
                ("Size", f"{m.size_bytes} bytes"),
            ],
            body,
        ),
        Paragraph("Sanitization", section),
        _table(
            [
                ("Category", meth.category),
                ("Technique", meth.technique),
                *([("IEEE 2883", meth.ieee2883)] if meth.ieee2883 else []),
                ("Mode asked", str(meth.mode)),
                ("Applied", meth.standard),
                ("Passes", ", ".join(meth.passes)),
                ("Why", meth.reason),
                ("Tool", meth.tool),
            ],
            body,
        ),
        *_purge_flow(c.purge, section, body),
        Paragraph("Verification", section),
        _table([("Method", v.method), ("Result", v.result)], body),
        Paragraph("Operation", section),
        _table(
            [
                ("Operator", f"{op.user or '-'} ({op.role or op.origin})"),
                ("Started", c.started),
                ("Ended", c.ended),
                ("Resumed", f"{c.resumed} time(s) after a restart"),
            ],
            body,
        ),
        Paragraph("Signature", section),
        _table(
            [
                ("Algorithm", doc.signature.alg),
                ("Body SHA-256", cert.digest(c).hex()),
                ("Signer key SHA-256", _key_fingerprint(doc.signature.public_key)),
                ("Value", doc.signature.value),
            ],
            mono,
        ),
        Spacer(1, 2 * mm),
        KeepTogether(
            [
                Paragraph("This page is a rendering. " + escape(cert.VERIFY_HOWTO), body),
                Spacer(1, 4 * mm),
                _signature_lines(body),
            ]
        ),
    ]
    page.build(flow)
    return out.getvalue()


def main() -> int:
    """`python -m mfpsecd.wipe.backends.certificate_pdf`: the document (JSON) on stdin, the
    PDF on stdout. How the daemon renders one without loading reportlab itself."""
    sys.stdout.buffer.write(render_pdf(cert.decode_document(sys.stdin.buffer.read())))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
