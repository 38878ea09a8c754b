"""Logging set up once per process, with personal data masked in every record (bot/observability.py)."""
from __future__ import annotations

from bot.observability import MaskingFilter, configure_logging

__all__ = ["MaskingFilter", "configure_logging"]
