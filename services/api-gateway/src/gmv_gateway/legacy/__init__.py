"""Retired browsing endpoints of the older API: 410 ``TTB_LEGACY_DISABLED``."""
