"""hakmem's version: the one place it is written.

Everything else derives from it: hak_version() (platform/version.h, generated
from this file), the shared library's soname libhakmem.so.MAJOR and file name
libhakmem.so.MAJOR.MINOR (BUILD.bazel, tools/install.sh), hakmem.pc, the CMake
version file, the Debian package (tools/make_deb.sh, which read this line
with sed) and the README (checked by tests/install/install_test.sh).
"""

HAKMEM_VERSION = "0.1.0"

HAKMEM_VERSION_MAJOR = HAKMEM_VERSION.split(".")[0]

HAKMEM_VERSION_MINOR = HAKMEM_VERSION.split(".")[1]

HAKMEM_SONAME = "libhakmem.so." + HAKMEM_VERSION_MAJOR
