"""Sliding-window rate limits, counted in one process's memory.

Each limit keeps, per key, the times of recent hits. Keys whose hits are all older
than the window are pruned as new keys arrive, so the table cannot grow without bound
however many addresses or visitors pass by."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class SlidingWindow:
    per_window: int
    window_seconds: float = 60.0
    max_keys: int = 100_000
    hits: dict[str, deque] = field(default_factory=dict)
    _next_prune: float = 0.0

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._prune(now)
        recent = self.hits.get(key)
        if recent is None:
            if len(self.hits) >= self.max_keys:
                return False  # a flood of new keys: refuse rather than grow
            recent = self.hits[key] = deque()
        while recent and now - recent[0] >= self.window_seconds:
            recent.popleft()
        if len(recent) >= self.per_window:
            return False
        recent.append(now)
        return True

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + self.window_seconds / 4
        stale = [k for k, times in self.hits.items() if not times or now - times[-1] >= self.window_seconds]
        for key in stale:
            del self.hits[key]
