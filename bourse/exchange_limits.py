"""The exchange's rate limits: sliding-window counters per key, in bounded memory.

A key is a grant (`grant:<id>`), a client address (`addr:<host>`) or an address's refused
credentials (`fail:<host>`). Each key holds two counters (this window and the last one) whose
weighted sum approximates a sliding window, so a key costs the same whatever its rate. Keys idle
for a whole window are forgotten, and at most MAX_KEYS are kept (the least recently used go
first), so made-up tokens or addresses cannot grow the service's memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_KEYS = 100_000  # a key is ~200 bytes: the limiter stays under ~20 MB

Rate = tuple[int, float]  # at most this many events in a window of this many seconds


@dataclass
class _Window:
    start: float
    previous: int = 0
    current: int = 0

    def estimate(self, moment: float, window: float) -> float:
        """Events in the sliding window ending now (the last window's share by overlap)."""
        elapsed = moment - self.start
        if elapsed >= 2 * window:
            self.start, self.previous, self.current = moment, 0, 0
        elif elapsed >= window:
            self.start, self.previous, self.current = self.start + window, self.current, 0
        overlap = 1.0 - (moment - self.start) / window
        return self.previous * max(0.0, overlap) + self.current


@dataclass
class RateLimiter:
    """Counters per key; `hit` counts an event if the key is under its rate."""

    max_keys: int = MAX_KEYS
    clock: Callable[[], float] = time.monotonic
    _keys: OrderedDict[str, tuple[_Window, float]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str, rate: Rate) -> bool:
        """Count one event of `key` and say True, or say False (not counted) when over its rate."""
        return self._apply(key, rate, count=True)

    def under(self, key: str, rate: Rate) -> bool:
        """Whether `key` is under its rate now (nothing is counted)."""
        return self._apply(key, rate, count=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def _apply(self, key: str, rate: Rate, count: bool) -> bool:
        limit, window = rate
        moment = self.clock()
        with self._lock:
            self._forget(moment)
            held = self._keys.pop(key, None)
            if held is None and not count:
                return True
            counter = held[0] if held is not None else _Window(moment)
            ok = counter.estimate(moment, window) < limit
            if ok and count:
                counter.current += 1
            self._keys[key] = (counter, window)  # the most recently used last
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
            return ok

    def _forget(self, moment: float) -> None:
        """Drop keys idle for two of their windows (both counters empty), oldest first."""
        while self._keys:
            key, (counter, window) = next(iter(self._keys.items()))
            if moment - counter.start < 2 * window:
                return
            del self._keys[key]
