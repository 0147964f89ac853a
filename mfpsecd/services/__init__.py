"""Use-cases built on ports."""
