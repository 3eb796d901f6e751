"""Building one window: claim it, merge what it covers with the streaming Merger, write the blob
under a fresh key, switch the row in one transaction, then delete what it replaced.

A compactor killed at any point leaves either the old row (and maybe an unreferenced new blob) or
the new row: never a row pointing at a half-written blob. Building again what is clean is a no-op.

A stale hourly window is folded, not rebuilt: the new window is the old one merged with the
profiles that arrived since (merging is associative), found by the version each profile was
stored at, so late data costs what it adds. Where the versions cannot prove what the old window
holds (rows older than that column), the hour is merged whole. An hour whose raw profiles
retention has removed (`pruned`) is always folded; its new profiles are deleted with the switch,
so the window never counts a profile twice.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

from shared import pprof
from shared.errors import NotFound
from shared.model import blob_key
from shared.ports import BlobStore, WindowStore
from shared.windows import DAY, HOUR, HourState, RawProfile, Window, window_key


@dataclass(frozen=True)
class Built:
    window: Window
    rebuilt: bool  # it replaced a stale window


class WindowBuilder:
    """The window builder over the ports; `clock` gives epoch seconds for `built_at`."""

    def __init__(self, windows: WindowStore, blobs: BlobStore, *, clock: Callable[[], float],
                 max_decompressed_bytes: int = pprof.DEFAULT_MAX_DECOMPRESSED) -> None:
        self.windows = windows
        self.blobs = blobs
        self.clock = clock
        self.max_decompressed_bytes = max_decompressed_bytes

    def hour(self, state: HourState) -> Built | None:
        """Build the hourly window of `state`'s (series, hour); None if clean or claimed elsewhere."""
        sid, hour = state.series_id, state.hour
        with self.windows.claim_hour(sid, hour) as claim:
            if claim is None:
                return None
            now, old = claim.state, claim.window
            if old is not None and old.built_from == now.version:
                return None
            # Rows stored after the counter was read (SQLite claims hold no lock) wait for the next pass.
            raw = [r for r in self.windows.raw_in(sid, hour, hour + HOUR - 1)
                   if r.version is None or r.version <= now.version]
            base, new = self._since(old, now, raw)
            merger = pprof.Merger()
            keys = []
            profiles = size = 0
            if base is not None:
                profiles, size = base.profiles, base.size
                if base.blob_key:
                    keys.append(base.blob_key)
            keys += [blob_key(r.id) for r in new]
            profiles += len(new)
            size += sum(r.size for r in new)
            inputs = self._fold(merger, keys)
            drop = [r.id for r in raw] if now.pruned else []
            window = self._window(merger if inputs else None, sid, HOUR, hour, now.version, profiles, size)
            claim.save(window, drop_raw=drop)
        self._delete([claim.replaced] if claim.replaced else [])
        self._delete([blob_key(pid) for pid in drop])
        return Built(window, rebuilt=old is not None)

    @staticmethod
    def _since(old: Window | None, now: HourState, raw: list[RawProfile]) -> tuple[Window | None, list[RawProfile]]:
        """The window to start from and the raw profiles to merge into it: the old window and what
        arrived after it when that is certain (its pruned raw profiles are gone, or the versions
        show it held exactly the rows of version <= its own), else nothing and every row."""
        if old is None:
            return None, raw
        if now.pruned:
            return old, raw
        held = [r for r in raw if r.version is not None and r.version <= old.built_from]
        if len(held) == old.profiles and all(r.version is not None for r in raw):
            return old, [r for r in raw if (r.version or 0) > old.built_from]
        return None, raw

    def day(self, series_id: str, day: int) -> Built | None:
        """Build the daily window from the day's clean hourly windows; None if not due or claimed."""
        with self.windows.claim_day(series_id, day) as claim:
            if claim is None or not claim.clean:
                return None
            old = claim.window
            if old is not None and old.built_from == claim.built_from:
                return None
            merger = pprof.Merger()
            inputs = self._fold(merger, [w.blob_key for w in claim.hours if w.blob_key])
            profiles = sum(w.profiles for w in claim.hours)
            size = sum(w.size for w in claim.hours)
            window = self._window(merger if inputs else None, series_id, DAY, day, claim.built_from, profiles, size)
            claim.save(window)
        self._delete([claim.replaced] if claim.replaced else [])
        return Built(window, rebuilt=old is not None)

    def _window(self, merger: pprof.Merger | None, sid: str, span: int, start: int, built_from: int,
                profiles: int, size: int) -> Window:
        """The window row; its blob is written first, under a key no other build uses."""
        key = None
        if merger is not None:
            key = window_key(sid, span, start, uuid.uuid4().hex[:12])
            self.blobs.put(key, merger.write(level=1))
        return Window(sid, start, span, key, built_from, profiles, size, int(self.clock()))

    def _fold(self, merger: pprof.Merger, keys: list[str]) -> int:
        """Stored profiles and windows into `merger`, each read in the native core without building
        it in Python, and checked as at ingest; how many were folded."""
        done = 0
        try:
            for data in self.blobs.get_many(keys):
                merger.add(data, max_decompressed=self.max_decompressed_bytes)
                done += 1
        except NotFound:
            raise NotFound(f"nothing found: blob {keys[done]!r} is gone (replaced or pruned meanwhile)") from None
        return done

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            self.blobs.delete(key)
