"""`mfpsec`, the maintenance CLI: a thin client of the daemon, one module per command group."""
