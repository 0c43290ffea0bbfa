"""Custom MQTT publishing to a user-configured broker (reference integrations.md 2), with Home
Assistant discovery and TLS: `publisher.py` is the component, `connection.py` the broker connection
and its failure reasons, `discovery.py` the Home Assistant messages."""
