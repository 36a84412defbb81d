"""Repositories: one per collection, each a small interface with a MongoDB
implementation (txmongo) and an in-memory one for unit tests."""
