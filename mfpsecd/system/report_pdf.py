"""The printable posture report (S-1): one A4 page rendered with reportlab by the CLI
(`mfpsec posture report --pdf`), never by the daemon. The page is a rendering for
people; the signed JSON document is the proof, and the page says how to check it."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from mfpsecd.system import report_document as pr

_HOWTO = (
    "Check the signed JSON document, not this page: `mfpsec posture verify REPORT.json "
    "--identity IDENTITY.pem`, with the device identity key you recorded "
    "(`mfpsec keys identity`)."
)
_MET = {True: ("met", colors.darkgreen), False: ("not met", colors.red)}
_STATE = {"on": colors.darkgreen, "off": colors.red}


def _style(rows: int, *, first_bold: bool = True) -> TableStyle:
    rules: list[Any] = [
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ]
    if first_bold and rows:
        rules.append(("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke))
    return TableStyle(rules)


def _p(text: str, style: ParagraphStyle, colour: colors.Color | None = None) -> Paragraph:
    # Settings and details quote what users and devices sent: escaped, never markup.
    body = escape(text) or "-"
    if colour is not None:
        body = f'<font color="{colour.hexval()}">{body}</font>'
    return Paragraph(body, style)


def _grid(rows: Sequence[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(_style(len(rows)))
    return table


def render_pdf(doc: pr.ReportDocument, document: bytes, *, verified: bool) -> bytes:
    """document: the signed JSON as it is kept, so the page names it by its SHA-256;
    verified: false for a kept file rendered unchecked (the page then says so first)."""
    r = doc.report
    d = r.device
    styles = getSampleStyleSheet()
    cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=7.5, leading=9)
    mono = ParagraphStyle("mono", parent=cell, fontName="Courier", fontSize=6.5, wordWrap="CJK")
    section = ParagraphStyle("section", parent=styles["Heading4"], spaceBefore=4, spaceAfter=2)
    out = io.BytesIO()
    page = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Security posture report {r.at}",
        author=f"{d.model} {d.serial}".strip(),
        subject=f"Security level {r.level_text}",
        creator=f"mfpsecd {d.daemon}",
        invariant=True,
    )
    flow: list[Flowable] = [Paragraph("Security posture report", styles["Title"])]
    if not verified:
        flow.append(
            _p(
                "NOT VERIFIED: rendered from a file without checking its signature. " + _HOWTO,
                ParagraphStyle("warn", parent=cell, fontSize=10, leading=12),
                colors.red,
            )
        )
    flow += [
        _grid(
            [
                ["Device", _p(f"{d.model}, serial {d.serial or 'unknown'} ({d.board})", cell)],
                ["Read at", _p(r.at, cell)],
                ["Security level", _p(r.level_text, cell)],
                ["Firmware", _p(d.firmware or "not verified at this power-on", cell)],
                ["Daemon", _p(d.daemon, cell)],
            ],
            [35, 145],
        ),
    ]
    if r.runtime_issues:
        flow += [
            Paragraph("Runtime issues (the ! after the level)", section),
            *[_p(i, cell, colors.red) for i in r.runtime_issues],
        ]
    flow += [
        Paragraph("Security level checks", section),
        _grid(
            [
                ["Level", "Check", "Result", "Found"],
                *[
                    [
                        str(c.level),
                        _p(c.title, cell),
                        _p(_MET[c.met][0], cell, _MET[c.met][1]),
                        _p(c.detail, cell),
                    ]
                    for c in r.checks
                ],
            ],
            [12, 55, 16, 97],
        ),
        Paragraph("Posture (S-1)", section),
        _grid(
            [
                ["Item", "State", "Setting", "Since"],
                *[
                    [
                        _p(i.title, cell),
                        _p(i.state.value, cell, _STATE.get(i.state.value)),
                        _p(f"{i.setting}{'; ' + i.detail if i.detail else ''}", cell),
                        _p(i.since, cell),
                    ]
                    for i in r.items
                ],
            ],
            [38, 20, 90, 32],
        ),
        Paragraph("Signature", section),
        _grid(
            [
                ["Algorithm", _p(doc.signature.alg, mono)],
                ["Identity key SHA-256", _p(d.identity, mono)],
                ["Document SHA-256", _p(hashlib.sha256(document).hexdigest(), mono)],
            ],
            [35, 145],
        ),
        Spacer(1, 2 * mm),
        Paragraph("This page is a rendering. " + escape(_HOWTO), cell),
    ]
    page.build(flow)
    return out.getvalue()
