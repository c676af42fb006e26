"""From received MQTT message to stored readings and findings: decoding, de-duplication, the
device registry and the routing to the detectors (no MQTT, no ticketing)."""
