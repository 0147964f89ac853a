"""Where the CLI keeps its session token between commands: a 0600 file in a 0700
directory under the user's runtime directory ($XDG_RUNTIME_DIR, normally /run/user/UID: a
tmpfs that goes away at logout and at reboot), one file per daemon socket."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from mfpsecd.base.errors import ErrorCode, MfpsecError


def _runtime_dir() -> Path | None:
    env = os.environ.get("XDG_RUNTIME_DIR")
    if env:
        return Path(env)
    default = Path(f"/run/user/{os.getuid()}")
    return default if default.is_dir() else None


def path_for(socket_path: str) -> Path | None:
    base = _runtime_dir()
    if base is None:
        return None
    digest = hashlib.sha256(os.path.abspath(socket_path).encode()).hexdigest()[:16]
    return base / "mfpsec" / f"session-{digest}"


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=False, exist_ok=True)
    st = directory.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise MfpsecError(
            ErrorCode.INVALID_PARAMETER,
            f"{directory} is not a private directory of this user",
            parameter="XDG_RUNTIME_DIR",
        )


def save(socket_path: str, token: str) -> Path:
    path = path_for(socket_path)
    if path is None:
        raise MfpsecError(
            ErrorCode.INVALID_PARAMETER,
            "no runtime directory to keep the session in: set XDG_RUNTIME_DIR",
            parameter="XDG_RUNTIME_DIR",
        )
    _private_dir(path.parent)
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    tmp.replace(path)
    return path


def load(socket_path: str) -> str | None:
    path = path_for(socket_path)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            return None  # not ours, or readable by others: never use it
        return os.read(fd, 256).decode(errors="replace").strip() or None
    finally:
        os.close(fd)


def forget(socket_path: str) -> None:
    path = path_for(socket_path)
    if path is not None:
        path.unlink(missing_ok=True)
