"""qloop: field telemetry in, quality tickets out. Shared contract code lives in this package."""

__version__ = "0.1.0"
