"""An independent Varlink implementation (the PyPI `varlink` package) talks to the daemon."""

from __future__ import annotations

import varlink

from mfpsecd.system.api import SYSTEM
from mfpsecd.varlink import idl
from tests.support import daemon as ds


def test_pypi_varlink_client(daemon: ds.DaemonProcess) -> None:
    with varlink.Client(address=f"unix:{daemon.socket_path}") as client:
        # GetInterfaceDescription is what the client itself calls to learn the interface.
        with client.open("io.mfpsecd.System") as system:
            status = system.GetStatus()
        assert status["state"] == "ready"
        assert status["board"] == "testboard"
        assert {c["name"] for c in status["components"]} >= {"ipc", "state-db"}

        with client.open("org.varlink.service") as service:
            info = service.GetInfo()
            assert info["product"] == "mfpsecd"
            assert info["interfaces"] == [
                "org.varlink.service",
                "io.mfpsecd.System",
                "io.mfpsecd.Auth",
                "io.mfpsecd.Keys",
                "io.mfpsecd.Audit",
                "io.mfpsecd.Wipe",
                "io.mfpsecd.Store",
                "io.mfpsecd.Firmware",
                "io.mfpsecd.Network",
                "io.mfpsecd.Usb",
                "io.mfpsecd.Remote",
                "io.mfpsecd.Monitoring",
            ]
            desc = service.GetInterfaceDescription("io.mfpsecd.System")
            assert desc["description"] == idl.generate(SYSTEM)
            try:
                service.GetInterfaceDescription("com.example.Nothing")
            except varlink.VarlinkError as exc:
                assert exc.error() == "org.varlink.service.InterfaceNotFound"
                assert exc.parameters() == {"interface": "com.example.Nothing"}
            else:
                raise AssertionError("InterfaceNotFound expected")


def test_pypi_varlink_client_streams(daemon: ds.DaemonProcess) -> None:
    with (
        varlink.Client(address=f"unix:{daemon.socket_path}") as client,
        client.open("io.mfpsecd.System") as system,
    ):
        first = next(iter(system.WatchStatus(_more=True)))
        assert first["state"] == "ready"
