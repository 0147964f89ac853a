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
from collections.abc import Sequence

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.wipe.model import certificate as cert

RENDER_TIMEOUT_S = 60.0
MAX_PDF_BYTES = 4 << 20  # one A4 page: a few tens of KiB
_MAX_ERR_BYTES = 64 << 10


class _TooMuch(Exception):
    pass


async def _capped(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    """What the child writes, read as it comes: beyond limit it is stopped, not
    buffered (a renderer gone wrong must not fill the daemon's memory)."""
    assert stream is not None
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        if len(data) > limit:
            raise _TooMuch
    return bytes(data)


async def _exchange(proc: asyncio.subprocess.Process, document: bytes) -> tuple[bytes, bytes]:
    assert proc.stdin is not None
    proc.stdin.write(document)
    await proc.stdin.drain()
    proc.stdin.close()
    out, err = await asyncio.gather(
        _capped(proc.stdout, MAX_PDF_BYTES), _capped(proc.stderr, _MAX_ERR_BYTES)
    )
    await proc.wait()
    return out, err


# isolated (-I): no environment variables, no user site, no cwd on the path
RENDERER = (sys.executable, "-I", "-m", "mfpsecd.wipe.backends.certificate_pdf")


async def render_pdf_apart(
    doc: cert.CertificateDocument, *, renderer: Sequence[str] = RENDERER
) -> bytes:
    """The printable certificate from the renderer's child process (renderer: its
    command line; the document on its standard input, the PDF on its output)."""
    proc = await asyncio.create_subprocess_exec(
        *renderer,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            _exchange(proc, cert.encode_document(doc)), RENDER_TIMEOUT_S
        )
    except BaseException as exc:  # the timeout, too much output, or the call cancelled
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        if isinstance(exc, _TooMuch):
            raise MfpsecError(
                ErrorCode.INTERNAL,
                f"the PDF renderer wrote more than {MAX_PDF_BYTES >> 20} MiB (stopped)",
            ) from None
        if not isinstance(exc, TimeoutError):
            raise
        raise MfpsecError(
            ErrorCode.INTERNAL, f"the PDF renderer took longer than {RENDER_TIMEOUT_S:g} s"
        ) from None
    if proc.returncode != 0 or not out.startswith(b"%PDF-"):
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise MfpsecError(ErrorCode.INTERNAL, f"the PDF renderer failed: {last[0]}")
    return out
