"""`mfpsec store …`: the encrypted job store's state, one's objects, and the purge."""

from __future__ import annotations

from pathlib import Path

import click

from mfpsecd.base.escape import shown
from mfpsecd.cli.common import (
    PASSWORD_FILE,
    Daemon,
    echo_json,
    password_again,
    reports_errors,
    size_text,
)
from mfpsecd.store import api as store
from mfpsecd.varlink.client import Connection


def render_status(s: store.StoreStatus) -> str:
    chain = click.style(s.key_chain, fg="green" if s.key_chain == "ready" else "red", bold=True)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.by_kind.items())) or "none"
    boxes = _kept(s.box_retention_days)
    pdfs = _kept(s.encrypted_pdf_retention_days)
    return "\n".join(
        [
            f"objects: {s.objects} ({kinds}); {size_text(s.bytes)} of data, "
            f"{size_text(s.sealed_bytes)} on disk",
            f"encryption: {s.encryption}",
            f"key chain: {chain}"
            + ("" if s.key_chain == "ready" else " - nothing can be stored or read until it is"),
            f"store: {s.directory} on {s.medium}",
            f"delete: {s.delete_method}",
            f"policies: box documents kept {boxes}; encrypted PDFs kept {pdfs}; "
            f"secure-print jobs deleted when printed or after {s.secure_print_timeout_hours} h; "
            f"ID & Print jobs when printed or after {s.id_print_timeout_hours} h",
        ]
    )


def _kept(days: int) -> str:
    if not days:
        return "until deleted"
    return f"{days} day" if days == 1 else f"{days} days"


@click.group("store")
def store_group() -> None:
    """The encrypted job store: status, objects, purge."""


@store_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def status(daemon: Daemon, as_json: bool) -> None:
    """Objects and bytes stored, the encryption and the deletion method in force."""
    with daemon.connect() as conn:
        s = conn.call(store.GET_STORE_STATUS)
    echo_json(s) if as_json else click.echo(render_status(s))


@store_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def list_objects(daemon: Daemon, as_json: bool) -> None:
    """Your objects (an administrator's: everyone's)."""
    with daemon.connect() as conn:
        objects = conn.call(store.LIST_OBJECTS).objects
    if as_json:
        echo_json(objects)
        return
    if not objects:
        click.echo("no objects")
    for o in objects:
        expiry = f", deleted at {o.expires_at}" if o.expires_at else ""
        if o.scan == "not-scanned":
            expiry += ", NOT SCANNED for viruses"
        click.echo(
            f"{o.id}  {o.kind:<12} {shown(o.owner):<12} {size_text(o.size):>10}  "
            f"{shown(o.job)}/{shown(o.name)}  {o.created_at}{expiry}"
        )


@store_group.command("put")
@click.argument(
    "source", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.option("--job", required=True, help="The job the data belongs to.")
@click.option(
    "--kind",
    type=click.Choice(["spool", "box", "secure-print", "encrypted-pdf", "id-print"]),
    default="spool",
    show_default=True,
    help="Decides when the policies delete it.",
)
@click.option("--name", help="A name for the object (default: the file's).")
@click.option("--owner", default="", help="Another user's (administrators only).")
@click.option(
    "--source",
    "origin",
    type=click.Choice(["print", "fax-received", "email-received", "scan-to-send", "fax-to-send"]),
    default="print",
    show_default=True,
    help="Where the data comes from: what a virus in it does to the job.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@reports_errors
def put(
    daemon: Daemon,
    *,
    source: Path,
    job: str,
    kind: str,
    name: str | None,
    owner: str,
    origin: str,
    as_json: bool,
) -> None:
    """Store a file (or stdin, '-') encrypted. The daemon reads it through the passed
    descriptor: it needs no access to the path."""
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 600.0))
        if str(source) == "-":
            o = _put(conn, 0, job=job, kind=kind, name=name or "stdin", owner=owner, origin=origin)
        else:
            with source.open("rb") as f:
                o = _put(
                    conn,
                    f.fileno(),
                    job=job,
                    kind=kind,
                    name=name or source.name,
                    owner=owner,
                    origin=origin,
                )
    echo_json(o) if as_json else click.echo(o.id)


def _put(
    conn: Connection, fd: int, *, job: str, kind: str, name: str, owner: str, origin: str
) -> store.StoredObject:
    """Store everything readable from fd (a file or the read end of a pipe)."""
    params = store.PutParams(conn.pass_descriptor(fd), job, kind, name, owner=owner, source=origin)
    return conn.call(store.PUT, params)


def _read(conn: Connection, object_id: str, fd: int) -> int:
    """The object's plaintext written to fd; → its size."""
    params = store.ReadParams(object_id, conn.pass_descriptor(fd))
    return conn.call(store.READ, params).size


@store_group.command("get")
@click.argument("object_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=Path("-"),
    show_default=True,
    help="Where the plaintext goes.",
)
@click.pass_obj
@reports_errors
def get(daemon: Daemon, object_id: str, output: Path) -> None:
    """Write an object's plaintext, once the whole object has authenticated."""
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 600.0))
        if str(output) == "-":
            _read(conn, object_id, 1)
            return
        try:
            f = output.open("wb")
        except OSError as exc:
            raise click.FileError(str(output), exc.strerror) from None
        with f:
            size = _read(conn, object_id, f.fileno())
    click.echo(f"{size} bytes written to {output}", err=True)


@store_group.command("delete")
@click.argument("object_id")
@click.pass_obj
@reports_errors
def delete(daemon: Daemon, object_id: str) -> None:
    """Crypto-erase one object."""
    with daemon.connect() as conn:
        o = conn.call(store.DELETE_OBJECT, store.ObjectParams(object_id))
    click.echo(f"deleted {o.id} ({o.kind}, {size_text(o.size)}): its key is destroyed")


@store_group.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@PASSWORD_FILE
@click.pass_obj
@reports_errors
def purge(daemon: Daemon, yes: bool, password_file: Path | None) -> None:
    """Crypto-erase every stored object (and overwrite the ciphertext on an HDD).

    A logged-in user gives their password again.
    """
    if not yes:
        click.confirm(
            "Destroy every stored job, box document and held print job?", abort=True, err=True
        )
    password = password_again(daemon, password_file)
    with daemon.connect() as conn:
        conn.set_timeout(max(daemon.timeout, 600.0))  # overwriting a full store takes time
        r = conn.call(store.PURGE, store.PurgeParams(password))
    click.echo(f"purged {r.objects} object(s), {size_text(r.bytes)}: every key destroyed")
