"""Descriptors passed beside a Varlink call: Varlink carries JSON only, so a client hands
a file descriptor over a side channel (SCM_RIGHTS) and names it in the call by a token."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

# A one-time token for a descriptor passed on the side channel (see fd_socket_path).
Descriptor = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")]


def fd_socket_path(varlink_socket: Path) -> Path:
    """The descriptor side channel next to a Varlink socket (`mfpsecd.sock` →
    `mfpsecd.fd.sock`): connect, send one byte with the descriptor attached (SCM_RIGHTS),
    read back a line with a one-time token (or `!reason`), valid for a minute for this uid,
    and name it as `descriptor` in Put or Read."""
    return varlink_socket.with_name(f"{varlink_socket.stem}.fd.sock")
