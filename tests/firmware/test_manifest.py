"""The firmware manifest rules: every way a path, a link or an entry could reach outside
the tree or hide something is refused by name; the canonical form is the only one
accepted; the tree comparison names extra, missing and changed entries."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfpsecd.base.errors import ErrorCode, MfpsecError
from mfpsecd.firmware.model import manifest as fm

DIGEST = hashlib.sha256(b"x").hexdigest()


def manifest(*entries: fm.Entry, epoch: int = 3) -> fm.Manifest:
    return fm.Manifest(
        format=fm.FORMAT,
        product="mfp-controller",
        version="2.4.1",
        epoch=epoch,
        models=["C300i", "C400i"],
        created="2026-11-22T00:00:00Z",
        entries=list(entries),
    )


GOOD = manifest(
    fm.Entry("bin", kind="dir", mode=0o755),
    fm.Entry("bin/panel", sha256=DIGEST, size=1, mode=0o755),
    fm.Entry("lib/libmfp.so.1", sha256=DIGEST, size=1),
    fm.Entry("lib", kind="dir", mode=0o755),
    fm.Entry("lib/libmfp.so", kind="symlink", target="libmfp.so.1", mode=0o777),
    fm.Entry("share/fonts/a.ttf", sha256=DIGEST, size=1),
)


def _refused(m: fm.Manifest) -> MfpsecError:
    with pytest.raises(MfpsecError) as info:
        fm.check(m)
    assert info.value.code is ErrorCode.FIRMWARE_MANIFEST_INVALID
    return info.value


def test_a_good_manifest_round_trips_in_canonical_form_only() -> None:
    fm.check(GOOD)
    raw = fm.canonical(GOOD)
    assert fm.parse(raw).entries == sorted(GOOD.entries, key=lambda e: e.path)
    assert fm.digest(raw) == hashlib.sha256(raw).digest()
    pretty = msgspec.json.format(raw, indent=1)
    for variant in (pretty, raw + b" ", raw.replace(b'"epoch":3', b'"epoch":03')):
        with pytest.raises(MfpsecError) as info:
            fm.parse(variant)
        assert info.value.code is ErrorCode.FIRMWARE_MANIFEST_INVALID
    unsorted = msgspec.json.encode(msgspec.structs.replace(GOOD, entries=GOOD.entries[::-1]))
    with pytest.raises(MfpsecError):
        fm.parse(unsorted)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty path"),
        ("/etc/passwd", "absolute path"),
        ("../etc/passwd", "'..' as a path component"),
        ("bin/../../etc", "'..' as a path component"),
        ("./bin", "'.' as a path component"),
        ("bin//panel", "empty path component"),
        ("bin/", "empty path component"),
        ("bin\\panel", "control character or backslash"),
        ("bin/pa\nnel", "control character or backslash"),
        ("cafe\u0301", "path not in Unicode NFC"),
        ("a" * 256, "path component too long"),
    ],
)
def test_paths_that_are_refused(path: str, reason: str) -> None:
    err = _refused(manifest(fm.Entry(path, sha256=DIGEST, size=1)))
    assert str(err.params["reason"]).startswith(reason)


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ((fm.Entry("a", sha256=DIGEST), fm.Entry("a", sha256=DIGEST)), "duplicate entry"),
        ((fm.Entry("a", sha256=DIGEST, mode=0o4755),), "setuid or setgid"),
        ((fm.Entry("a", sha256="ABC"),), "file without a SHA-256"),
        ((fm.Entry("a", kind="dir", sha256=DIGEST),), "dir with a digest"),
        ((fm.Entry("l", kind="symlink", target="/etc/shadow"),), "symlink to an absolute path"),
        ((fm.Entry("lib/l", kind="symlink", target="../../x"),), "symlink target leaves"),
        ((fm.Entry("l", kind="symlink", target=""),), "symlink without a target"),
        ((fm.Entry("a", sha256=DIGEST), fm.Entry("a/b", sha256=DIGEST)), "entry under a file"),
        (
            (
                fm.Entry("l", kind="symlink", target="d"),
                fm.Entry("d", kind="dir"),
                fm.Entry("l/x", sha256=DIGEST),
            ),
            "entry under a symlink",
        ),
    ],
)
def test_entries_that_are_refused(entries: tuple[fm.Entry, ...], reason: str) -> None:
    assert str(_refused(manifest(*entries)).params["reason"]).startswith(reason)


def test_schema_refusals() -> None:
    raw = fm.canonical(GOOD)
    for old, new in (
        (b'"epoch":3', b'"epoch":-1'),
        (b'"models":["C300i","C400i"]', b'"models":[]'),
        (b'"format":"mfpsecd-firmware-manifest/1"', b'"format":"other/1"'),
    ):
        with pytest.raises(MfpsecError):
            fm.parse(raw.replace(old, new))
    with pytest.raises(MfpsecError):
        fm.parse(raw[:-1] + b',"extra":1}')


_SAFE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/\\."),
    min_size=1,
    max_size=20,
)


@settings(max_examples=300)
@given(
    parts=st.lists(_SAFE, min_size=1, max_size=6),
    bad=st.sampled_from(["..", ".", ""]),
    at=st.integers(min_value=0, max_value=6),
)
def test_path_rule_properties(parts: list[str], bad: str, at: int) -> None:
    assert fm.path_problem("/".join(parts)) == ""
    spliced = [*parts[:at], bad, *parts[at:]]
    assert fm.path_problem("/".join(spliced)) != ""
    assert fm.path_problem("/" + "/".join(parts)) == "absolute path"


def test_the_tree_comparison_names_what_differs() -> None:
    found = {e.path: (e.kind, e.mode, e.target) for e in GOOD.entries}
    fm.compare(GOOD, found)
    for change, reason, path in (
        ({"extra.sh": ("file", 0o755, "")}, "not in the manifest", "extra.sh"),
        ({"bin/panel": ("file", 0o777, "")}, "mode 777", "bin/panel"),
        (
            {"lib/libmfp.so": ("symlink", 0o777, "/etc/passwd")},
            "symlink target differs",
            "lib/libmfp.so",
        ),
        ({"share/fonts/a.ttf": ("symlink", 0o777, "x")}, "a symlink", "share/fonts/a.ttf"),
    ):
        with pytest.raises(MfpsecError) as info:
            fm.compare(GOOD, {**found, **change})
        assert info.value.code is ErrorCode.FIRMWARE_TREE_MISMATCH
        assert str(info.value.params["reason"]).startswith(reason)
        assert info.value.params["path"] == path
    missing = dict(found)
    del missing["bin/panel"]
    with pytest.raises(MfpsecError) as info:
        fm.compare(GOOD, missing)
    assert info.value.params == {"reason": "missing", "path": "bin/panel"}
