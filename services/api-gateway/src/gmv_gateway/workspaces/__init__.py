"""Workspaces and their members (owner / admin / member)."""
