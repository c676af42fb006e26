"""The cloud side: ingest from the broker, storage, detection and ticketing."""
