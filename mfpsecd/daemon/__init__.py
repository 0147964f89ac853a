"""The process: wiring from the board profile, supervision, IPC server, systemd integration."""
