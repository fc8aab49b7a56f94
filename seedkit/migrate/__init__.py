"""Versioned raw-SQL migrations: files, statement splitting, the runner (``seedkit migrate``)."""

from __future__ import annotations

from .files import Migration, discover

__all__ = ["Migration", "discover"]
