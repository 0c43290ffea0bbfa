"""Machine-to-machine interfaces that expose meter snapshots (Modbus TCP, MQTT, InfluxDB, mDNS)."""
