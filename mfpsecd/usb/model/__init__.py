"""Pure logic of the USB port policy: no I/O, no clock, no asyncio."""
