"""The ticketing HTTP API (CONTRACTS.md §4)."""
