"""The printable certificate, rendered in a child process.

reportlab and the pillow it loads cost the daemon some 20 MiB of memory and a score of
shared libraries for as long as it runs, for a page printed a few times in a disk's life.
The daemon therefore renders it in a short-lived child (`certificate_pdf` run as a
module): the memory comes back when the page is done, and a renderer that hangs or
crashes costs one call, not the daemon. The CLI renders in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.wipe.model import certificate as cert

RENDER_TIMEOUT_S = 60.0
MAX_PDF_BYTES = 4 << 20  # one A4 page: a few tens of KiB


async def render_pdf_apart(doc: cert.CertificateDocument) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # isolated: no environment variables, no user site, no cwd on the path
        "-m",
        "mfpsecd.wipe.backends.certificate_pdf",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(cert.encode_document(doc)), RENDER_TIMEOUT_S
        )
    except BaseException as exc:  # the timeout, or the call cancelled (caller gone, stop)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        if not isinstance(exc, TimeoutError):
            raise
        raise MfpsecError(
            ErrorCode.INTERNAL, f"the PDF renderer took longer than {RENDER_TIMEOUT_S:g} s"
        ) from None
    if proc.returncode != 0 or not out.startswith(b"%PDF-") or len(out) > MAX_PDF_BYTES:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise MfpsecError(ErrorCode.INTERNAL, f"the PDF renderer failed: {last[0]}")
    return out
