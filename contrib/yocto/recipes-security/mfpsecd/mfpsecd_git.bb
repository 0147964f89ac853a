SUMMARY = "mfpsecd: the security daemon of a multifunction printer's controller"
DESCRIPTION = "Storage sanitization and encryption engines, TPM-wrapped keys, firmware \
signature verification at update and boot, authentication lockout, an IP filter and a \
tamper-evident audit log forwarded to a SIEM, driven over a local Varlink API."
HOMEPAGE = "https://example.invalid/mfpsecd"
SECTION = "security"
# The project's licence: the integrator replaces it and the checksum with the real ones.
LICENSE = "CLOSED"

SRC_URI = "git://example.invalid/mfpsecd.git;protocol=https;branch=main"
SRCREV = "${AUTOREV}"
PV = "0.1.0+git${SRCPV}"
S = "${WORKDIR}/git"

# python_mesonpy builds the wheel (C engines and extension, cross-compiled with the
# SDK's meson cross file); systemd and useradd place the units and the system user.
inherit python_mesonpy systemd useradd pkgconfig

DEPENDS += "openssl argon2 tpm2-tss python3-click-native python3-msgspec-native \
            python3-structlog-native"

# Optional parts: each is a meson option (off leaves its module out of the package) and
# pulls in the Python package it needs at run time.
PACKAGECONFIG ??= "card-login snmp pdf"
PACKAGECONFIG[card-login] = "-Dcard_login=enabled,-Dcard_login=disabled,,python3-pkcs11 opensc"
PACKAGECONFIG[snmp] = "-Dsnmp=enabled,-Dsnmp=disabled,,python3-pysnmp"
PACKAGECONFIG[pdf] = "-Dpdf=enabled,-Dpdf=disabled,,python3-reportlab"

# The wheel carries the system files as data (pip cannot place them): put them where
# systemd, sysusers and tmpfiles look. Man pages and completions come from the commands.
do_install:append() {
    data=${D}${prefix}
    install -d ${D}${systemd_system_unitdir} ${D}${sysconfdir}/mfpsecd \
        ${D}${nonarch_libdir}/sysusers.d ${D}${nonarch_libdir}/tmpfiles.d \
        ${D}${datadir}/mfpsecd ${D}${datadir}/snmp/mibs ${D}${mandir}/man8 ${D}${docdir}
    install -m 0644 ${data}/mfpsecd/system/systemd/* ${D}${systemd_system_unitdir}/
    install -m 0644 ${data}/mfpsecd/system/sysusers.d/mfpsecd.conf ${D}${nonarch_libdir}/sysusers.d/
    install -m 0644 ${data}/mfpsecd/system/tmpfiles.d/mfpsecd.conf ${D}${nonarch_libdir}/tmpfiles.d/
    install -m 0644 ${data}/mfpsecd/system/etc/mfpsecd.toml ${D}${sysconfdir}/mfpsecd/
    rm -rf ${data}/mfpsecd/system
    mv ${data}/mfpsecd/hw ${data}/mfpsecd/varlink ${D}${datadir}/mfpsecd/
    mv ${data}/snmp/mibs/MFPSEC-MIB.txt ${D}${datadir}/snmp/mibs/
    mv ${data}/man/man8/* ${D}${mandir}/man8/
    mv ${data}/doc/mfpsecd ${D}${docdir}/
    rm -rf ${data}/mfpsecd ${data}/man ${data}/doc ${data}/bash-completion \
        ${data}/zsh ${data}/fish ${data}/pkgconfig ${data}/snmp
}

SYSTEMD_SERVICE:${PN} = "mfpsecd.service mfpsecd.socket mfpsecd-fd.socket \
                         mfpsecd-purge.socket \
                         mfpsecd-fwverify.service mfpsecd-netfilter.service"
SYSTEMD_AUTO_ENABLE = "enable"

USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system mfpsec; --system tss"
USERADD_PARAM:${PN} = "--system --home-dir /var/lib/mfpsecd --no-create-home \
                       --shell /sbin/nologin --user-group mfpsecd"

FILES:${PN} += "${systemd_system_unitdir} ${nonarch_libdir}/sysusers.d \
                ${nonarch_libdir}/tmpfiles.d ${datadir}/mfpsecd ${datadir}/snmp/mibs"
CONFFILES:${PN} = "${sysconfdir}/mfpsecd/mfpsecd.toml"

RDEPENDS:${PN} = "python3-core python3-asyncio python3-sqlite3 python3-json \
                  python3-logging python3-email python3-ctypes \
                  python3-msgspec python3-structlog python3-click python3-cryptography \
                  python3-tpm2-pytss python3-pyudev python3-aiosmtplib python3-pyroute2 \
                  libcrypto libargon2 libtss2 libtss2-tcti-device nftables \
                  hdparm sg3-utils util-linux-blkdiscard"
# uvloop halves the IPC's per-call cost where it builds (not on armv7).
RRECOMMENDS:${PN}:aarch64 = "python3-uvloop"
RRECOMMENDS:${PN}:x86-64 = "python3-uvloop"
