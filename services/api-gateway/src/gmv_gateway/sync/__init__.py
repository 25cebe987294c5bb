"""Sync requests (meta / products) and the run records of a binding."""
