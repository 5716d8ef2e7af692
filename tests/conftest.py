"""Shared test fixtures live in the topic folders' conftest.py files."""
