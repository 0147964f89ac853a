"""Implementations of the ports; the only modules that touch hardware, system libraries and
the native extension's engines."""
