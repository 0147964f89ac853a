"""The IPC interface, declared once: types, methods, errors, Varlink framing and IDL."""
