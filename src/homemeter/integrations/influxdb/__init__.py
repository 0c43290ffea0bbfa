"""InfluxDB writer over HTTP line protocol, v1 or v2 (InfluxDB 3 takes v2), with store and forward.

`line_protocol.py` builds the lines, `queue.py` keeps them on disk until written, `endpoint.py` knows
the request and what the answers mean, `writer.py` is the component (reference integrations.md 3).
"""
