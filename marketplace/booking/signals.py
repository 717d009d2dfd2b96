"""What the booking calendar announces, without knowing who listens: usage monitoring opens and closes
a session of use when an operator checks a booking in and out. Receivers run in the change's own
transaction: send(booking, session=…, at=…)."""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()
checked_in = _signals.signal("booking-checked-in")
checked_out = _signals.signal("booking-checked-out")
