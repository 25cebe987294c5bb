"""Cached lists of a binding: business centers, advertisers, stores and products."""
