"""Short versions of `make soak`'s hostile clients, on one service (failed logins last: they block
127.0.0.1 for a minute)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability import hostile
from tests.reliability.report import assert_held
from tests.reliability.service import Homemeter, running, write_config


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homemeter]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    write_config(data)
    with running(data) as service:
        yield service


def test_idle_modbus_connections_are_closed(svc: Homemeter) -> None:
    assert_held(hostile.idle_modbus(svc, connections=200))


def test_slowloris_connections_are_closed(svc: Homemeter) -> None:
    assert_held(hostile.slowloris(svc, connections=40))


def test_bodies_over_the_limits_are_refused_early(svc: Homemeter) -> None:
    assert_held(hostile.oversize_bodies(svc))


def test_bodies_trickled_a_byte_a_second_get_408(svc: Homemeter) -> None:
    assert_held(hostile.slow_bodies(svc, connections=20))


def test_clients_gone_mid_body_leave_no_error(svc: Homemeter) -> None:
    assert_held(hostile.client_gone_mid_body(svc))


def test_failed_logins_are_blocked_and_the_user_still_logs_in(svc: Homemeter) -> None:
    assert_held(hostile.failed_logins(svc, attempts=1000))


def test_service_log_has_no_error(svc: Homemeter) -> None:
    errors = [line for line in svc.log.splitlines() if "level=error" in line]
    assert not errors, Path(svc.log_path or "").name + "\n" + "\n".join(errors)
