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
from collections.abc import Callable, Sequence

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.wipe.model import certificate as cert

RENDER_TIMEOUT_S = 60.0
MAX_PDF_BYTES = 4 << 20  # one A4 page: a few tens of KiB
_MAX_ERR_BYTES = 64 << 10
# isolated (-I): no environment variables, no user site, no cwd on the path
RENDERER = (sys.executable, "-I", "-m", "mfpsecd.wipe.backends.certificate_pdf")


async def _capped(
    stream: asyncio.StreamReader | None, limit: int, on_excess: Callable[[], None]
) -> tuple[bytes, bool]:
    """What the child writes, read as it comes: past limit the child is stopped
    (on_excess) and the rest read and dropped until the pipe ends, never buffered (a
    renderer gone wrong must not fill the daemon's memory). → (data, whether too much)."""
    assert stream is not None
    data = bytearray()
    excess = False
    while chunk := await stream.read(65536):
        if excess:
            continue
        data += chunk
        if len(data) > limit:
            excess = True
            on_excess()
            del data[limit:]
    return bytes(data), excess


async def _feed(proc: asyncio.subprocess.Process, document: bytes) -> None:
    assert proc.stdin is not None
    # A renderer that dies before it reads says why on its stderr: read on.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(document)
        await proc.stdin.drain()
        proc.stdin.close()


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

    def stop() -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    # The readers run to the end of their pipes whatever happens (a stopped child's
    # pipes end at once): a pipe nobody reads would keep the process from being reaped.
    reading = asyncio.gather(
        _capped(proc.stdout, MAX_PDF_BYTES, stop), _capped(proc.stderr, _MAX_ERR_BYTES, stop)
    )

    async def exchange() -> None:
        await _feed(proc, cert.encode_document(doc))
        await asyncio.shield(reading)
        await proc.wait()

    try:
        await asyncio.wait_for(exchange(), RENDER_TIMEOUT_S)
    except BaseException as exc:  # the timeout, or the call cancelled (caller gone, stop)
        stop()
        await asyncio.shield(asyncio.gather(reading, proc.wait()))
        if not isinstance(exc, TimeoutError):
            raise
        raise MfpsecError(
            ErrorCode.INTERNAL, f"the PDF renderer took longer than {RENDER_TIMEOUT_S:g} s"
        ) from None
    (out, too_much), (err, _) = reading.result()
    if too_much:
        raise MfpsecError(
            ErrorCode.INTERNAL,
            f"the PDF renderer wrote more than {MAX_PDF_BYTES >> 20} MiB (stopped)",
        )
    if proc.returncode != 0 or not out.startswith(b"%PDF-"):
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise MfpsecError(ErrorCode.INTERNAL, f"the PDF renderer failed: {last[0]}")
    return out
