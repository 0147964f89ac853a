SUMMARY = "Structured logging for Python"
HOMEPAGE = "https://www.structlog.org/"
LICENSE = "MIT | Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE-MIT;md5=0473cdcf9c6ed3f81c08d886870daea5 \
                    file://LICENSE-APACHE;md5=2ee41112a44fe7014dce33e26468ba93"

SRC_URI[sha256sum] = "f63a716cbd1b1291cf7661de7794b455acfa4c43c5bcf1630e6ad5ddc1adb3b7"

inherit pypi python_hatchling

DEPENDS += "python3-hatch-vcs-native python3-hatch-fancy-pypi-readme-native"

RDEPENDS:${PN} = "python3-core python3-logging python3-json python3-asyncio"

BBCLASSEXTEND = "native nativesdk"
