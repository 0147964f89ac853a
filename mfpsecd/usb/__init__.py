"""USB port policy (SPEC U-1..U-4): what may be plugged into the controller."""
