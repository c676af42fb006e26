"""Fault detectors: small pure objects, one per file, fed blocks of readings in event time."""

from cloud.anomaly.base import Block, Detector, Finding

__all__ = ["Block", "Detector", "Finding"]
