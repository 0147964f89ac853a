SUMMARY = "SNMP library for Python (the LeXtudio line, 7.x: asyncio, SHA-2 USM)"
HOMEPAGE = "https://github.com/lextudio/pysnmp"
LICENSE = "BSD-2-Clause"
LIC_FILES_CHKSUM = "file://LICENSE.rst;md5=57ee828406c11080ad9bd7eabdc5ae1b"

SRC_URI[sha256sum] = "db72f439b066725d2586dff068478dc8e9b303a4dba3294462b0e76b3cb63bc2"

inherit pypi python_flit_core

RDEPENDS:${PN} = "python3-core python3-asyncio python3-pyasn1"
