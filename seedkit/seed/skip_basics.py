"""What the seed engine's every run needs of skipping unchanged rows (seed/skip_tracker.py), without
the trackers and records themselves: a run whose fixtures are too small to skip rows of, or that finds
no record to skip by, never loads those (a small project's rerun)."""

from __future__ import annotations

DIGESTS = "seedkit_digests"
CHUNK = 4  # rows per chunk digest: a rerun with 1 % of rows changed here and there stages ~4 %


class Restage(Exception):
    """Keys moved in a way the digests cannot vouch for: stage the whole fixture again."""


__all__ = ["CHUNK", "DIGESTS", "Restage"]
