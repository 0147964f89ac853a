"""The ipc suite: GetStatus round trips of mfpsecd against other IPC stacks (suite.py).

This package is also imported by the peer servers (varlink_peer, dbus_peer), so it stays
empty of side effects.
"""
