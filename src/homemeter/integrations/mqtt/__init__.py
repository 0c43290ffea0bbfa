"""Custom MQTT publishing to a user-configured broker (reference integrations.md 2).

This release has the configuration only; the publisher comes later.
"""

from homemeter.config.mqtt import MqttConfig

__all__ = ["MqttConfig"]
