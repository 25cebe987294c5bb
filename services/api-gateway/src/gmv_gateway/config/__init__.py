"""The GMV Max configuration of a binding and its product auto-sync."""
