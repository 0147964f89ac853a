"""Write the committed .varlink files from the declarations (run by `make idl`)."""

from __future__ import annotations

from mfpsecd.daemon.interfaces import INTERFACES
from mfpsecd.varlink.idl import generate, idl_path


def main() -> None:
    for interface in INTERFACES:
        if interface.name.startswith("org.varlink."):
            continue  # the protocol's own interface: not ours to publish
        idl_path(interface).write_text(generate(interface))


if __name__ == "__main__":
    main()
