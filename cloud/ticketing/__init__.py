"""Quality tickets by batch: statistics, grading, routing, lifecycle and the HTTP API."""
