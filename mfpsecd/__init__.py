"""mfpsecd: the security daemon of a multifunction printer controller."""

__version__ = "0.1.0"
