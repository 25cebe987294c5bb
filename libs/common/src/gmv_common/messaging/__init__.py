"""Outbox, inbox and the consumer runner: how services talk through the bus reliably."""
