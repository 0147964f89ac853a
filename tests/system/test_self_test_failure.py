"""B-2 / FPT_TST_EXT.1 on the running daemon: a library that gives wrong answers (here
libargon2, replaced through LD_PRELOAD by one that fails every call) keeps the daemon
from becoming ready: status says which test failed, every security function refuses, the
failure is in the audit log; the next start on a sound library is ready again."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mfpsecd.audit import frames
from mfpsecd.audit import log_format as auditlog
from mfpsecd.audit.events import EventType
from mfpsecd.base.errors import EX_SOFTWARE, ErrorCode, MfpsecError
from mfpsecd.base.health import HealthState
from mfpsecd.client import Connection
from mfpsecd.system import api as system
from mfpsecd.system.api import DaemonState
from tests.support import daemon as ds
from tests.support.tpm import requires_swtpm

pytestmark = [
    requires_swtpm,
    pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler"),
]

_BROKEN_ARGON2 = """
/* Every Argon2id computation fails, as a corrupted library would. */
int argon2id_ctx(void *context) { (void)context; return -22; }
"""


def _audit_records(root: Path) -> list[auditlog.Record]:
    records = []
    for segment in sorted((root / "lib" / "audit").glob("audit-*.log")):
        payloads, _, _ = frames.scan(segment.read_bytes())
        records += [auditlog.decode(p) for p in payloads]
    return records


@pytest.mark.sfr("FPT_TST_EXT.1")
@pytest.mark.spec("B-2")
def test_a_failed_self_test_serves_status_only(short_tmp: Path) -> None:
    shim = short_tmp / "broken-argon2.so"
    source = short_tmp / "broken-argon2.c"
    source.write_text(_BROKEN_ARGON2)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(source)], check=True)
    root = short_tmp / "d"

    with ds.running(root, env={"LD_PRELOAD": str(shim)}) as d:
        with Connection(d.socket_path) as conn:
            status = conn.call(system.GET_STATUS)
            assert status.state is DaemonState.FAILED
            comp = {c.name: c for c in status.components}["self-test"]
            assert comp.state is HealthState.FAILED and comp.detail.startswith("argon2id failed")
            with pytest.raises(MfpsecError) as refused:
                conn.call("io.mfpsecd.Auth.Login", {"user": "admin", "password": "eA=="})
            assert refused.value.code is ErrorCode.SELF_TEST_FAILED
            assert refused.value.params["test"] == "argon2id"
        shown = ds.mfpsec(d.socket_path, "status")
        assert "failed" in shown.stdout and "argon2id failed" in shown.stdout, shown.stdout
        keys = ds.mfpsec(d.socket_path, "keys", "status")
        assert keys.returncode == EX_SOFTWARE and "self-test" in keys.stderr, keys.stderr
        assert any(
            n.startswith("STATUS=power-on self-test failed: argon2id") for n in d.notifications
        )

    (failed,) = [r for r in _audit_records(root) if r.type is EventType.SELF_TEST]
    assert failed.outcome is auditlog.Outcome.FAILURE
    assert failed.details["failed"] == "argon2id"
    assert "aes-256-gcm" in str(failed.details["tests"])  # what ran before it passed

    with ds.running(root) as d, Connection(d.socket_path) as conn:
        st = conn.call(system.GET_STATUS)
        assert st.state is DaemonState.READY, [
            c for c in st.components if c.state is not HealthState.OK
        ]
    outcomes = [r.outcome for r in _audit_records(root) if r.type is EventType.SELF_TEST]
    assert outcomes == [auditlog.Outcome.FAILURE, auditlog.Outcome.SUCCESS]
