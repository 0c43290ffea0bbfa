"""meter-values is answered in front of the router: auth, statistics and the document stay the same."""

from __future__ import annotations

import orjson
import requests
from requests.auth import HTTPDigestAuth

from homemeter.meter.payloads import channel_values
from tests.integration.conftest import RunningService, wait_until

PATH = "/api/v1/ade7953/meter-values"


def test_needs_digest_auth(service: RunningService) -> None:
    anonymous = requests.get(f"{service.url}{PATH}", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Digest ")
    wrong = requests.get(f"{service.url}{PATH}", auth=HTTPDigestAuth("admin", "not it"), timeout=5)
    assert wrong.status_code == 401


def test_document_and_statistics(service: RunningService) -> None:
    wait_until(lambda: service.services.meter.latest.channels[0].has_reading, what="a first reading")
    stats = service.services.stats
    before = stats.requests
    reply = service.get(PATH)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.content)
    assert stats.requests > before  # counted like any routed request
    values = orjson.loads(reply.content)
    channel0 = values[0]
    assert channel0["index"] == 0
    assert list(channel0["data"]) == list(channel_values(service.services.meter.latest.channels[0]))
    # The routed variant still answers and has the same shape for one channel.
    one = service.get(f"{PATH}?index=0").json()
    assert list(one) == list(channel0["data"])
