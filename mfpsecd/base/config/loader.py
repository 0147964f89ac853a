"""Load the configuration and the board profile from TOML, resolve names and paths."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msgspec import structs

from mfpsecd.base.admission import AdmissionRules
from mfpsecd.base.config.schema import PROFILE_TAG, BoardProfile, Config, parse
from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.base.paths import Paths

DEFAULT_CONFIG = Path("/etc/mfpsecd/mfpsecd.toml")


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"{what} {path} not found",
            key=str(path),
            reason="file not found",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"{path}: {exc}",
            key=str(path),
            reason=f"not valid TOML: {exc}",
        ) from None
    except OSError as exc:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"{path}: {exc.strerror}",
            key=str(path),
            reason=exc.strerror or "unreadable",
        ) from None


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (base / p).resolve()


def load_config(path: Path) -> Config:
    config = parse(_read_toml(path, "configuration"), Config, str(path))
    base = path.resolve().parent
    # Relative paths in a file are relative to that file.
    daemon = config.daemon
    ipc = config.ipc
    audit = structs.replace(
        config.audit,
        forward=[
            structs.replace(f, ca_file=str(_resolve(base, f.ca_file)) if f.ca_file else None)
            for f in config.audit.forward
        ],
    )
    return structs.replace(
        config,
        audit=audit,
        daemon=structs.replace(daemon, board_dir=str(_resolve(base, daemon.board_dir))),
        ipc=structs.replace(
            ipc, socket_path=str(_resolve(base, ipc.socket_path)) if ipc.socket_path else None
        ),
    )


@dataclass(frozen=True)
class Board:
    profile: BoardProfile
    source: Path
    paths: Paths
    firmware_roots: tuple[Path, ...] = ()  # the vendor roots' PEM files, resolved
    firmware_crls: tuple[Path, ...] = ()  # their revocation lists, resolved


def profile_tag(directory: Path) -> str:
    """What PROFILE_TAG stands for: the first 8 hex digits of the SHA-256 of the profile's
    directory (resolved), as `make sim-net` computes it."""
    return hashlib.sha256(str(directory).encode()).hexdigest()[:8]


def _tagged_namespaces(profile: BoardProfile, base: Path) -> BoardProfile:
    if not any(n.netns and PROFILE_TAG in n.netns for n in profile.nics):
        return profile
    tag = profile_tag(base)
    nics = [
        structs.replace(n, netns=n.netns.replace(PROFILE_TAG, tag)) if n.netns else n
        for n in profile.nics
    ]
    return structs.replace(profile, nics=nics)


def load_board(config: Config, board: str | None) -> Board:
    name_or_path = board or config.daemon.board
    if not name_or_path:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            "no board profile: give --board or set daemon.board",
            key="daemon.board",
            reason="missing",
        )
    candidate = Path(name_or_path)
    if candidate.suffix != ".toml":
        candidate = Path(config.daemon.board_dir) / f"{name_or_path}.toml"
    profile = parse(_read_toml(candidate, "board profile"), BoardProfile, str(candidate))
    base = candidate.resolve().parent
    profile = _tagged_namespaces(profile, base)
    p, fw = profile.paths, profile.firmware
    paths = Paths(
        state_dir=_resolve(base, p.state_dir),
        run_dir=_resolve(base, p.run_dir),
        dev_root=_resolve(base, p.dev_root),
        sys_root=_resolve(base, p.sys_root),
        proc_root=_resolve(base, p.proc_root),
        host_sys_root=_resolve(base, p.host_sys_root),
        store_dir=None if profile.store.dir is None else _resolve(base, profile.store.dir),
        firmware_dir=None if fw is None or fw.slots_dir is None else _resolve(base, fw.slots_dir),
    )
    roots = () if fw is None else tuple(_resolve(base, r) for r in fw.roots)
    crls = () if fw is None else tuple(_resolve(base, c) for c in fw.crls)
    return Board(profile, candidate.resolve(), paths, roots, crls)


def _uid(principal: str | int, key: str) -> int:
    if isinstance(principal, int):
        return principal
    try:
        return pwd.getpwnam(principal).pw_uid
    except KeyError:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"{key}: no such user {principal!r}",
            key=key,
            reason=f"no such user {principal!r}",
        ) from None


def gid_of(principal: str | int, key: str) -> int:
    if isinstance(principal, int):
        return principal
    try:
        return grp.getgrnam(principal).gr_gid
    except KeyError:
        raise MfpsecError(
            ErrorCode.CONFIG_INVALID,
            f"{key}: no such group {principal!r}",
            key=key,
            reason=f"no such group {principal!r}",
        ) from None


def admission_rules(config: Config) -> AdmissionRules:
    """CONFIG_INVALID for a user listed as more than one of the panel and the agents: the
    first class would win, and an agent listed as the panel could approve itself."""
    a = config.access
    classes = {
        "access.panel_users": a.panel_users,
        "access.remote_agent_users": a.remote_agent_users,
        "access.fleet_agent_users": a.fleet_agent_users,
    }
    seen: dict[int, str] = {}
    for key, users in classes.items():
        for u in users:
            uid = _uid(u, key)
            if seen.setdefault(uid, key) != key:
                raise MfpsecError(
                    ErrorCode.CONFIG_INVALID,
                    key=key,
                    reason=f"user {u} is also in {seen[uid]}: one peer class per user",
                )
    return AdmissionRules(
        daemon_uid=os.geteuid(),
        panel_uids=frozenset(_uid(u, "access.panel_users") for u in a.panel_users),
        maintenance_gids=frozenset(
            gid_of(g, "access.maintenance_groups") for g in a.maintenance_groups
        ),
        remote_agent_uids=frozenset(
            _uid(u, "access.remote_agent_users") for u in a.remote_agent_users
        ),
        fleet_agent_uids=frozenset(
            _uid(u, "access.fleet_agent_users") for u in a.fleet_agent_users
        ),
    )
