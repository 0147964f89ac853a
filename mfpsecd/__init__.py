"""mfpsecd: the security daemon of a multifunction printer controller."""

from importlib.metadata import PackageNotFoundError, version

try:
    # Written once, in meson.build (the installed package's metadata carries it).
    __version__ = version("mfpsecd")
except PackageNotFoundError:  # a copy of the source tree that was never installed
    __version__ = "0+unknown"
