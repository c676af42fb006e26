"""Simulated fleets of products with injected, labelled faults."""
