"""What the HTTP layer may use. Handlers read snapshots and send commands; they own no state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from homemeter.cpu_load import CpuHistory
from homemeter.integrations.modbus.service import ModbusService
from homemeter.issues import IssueRegistry
from homemeter.log_control import LogControl
from homemeter.logs import RingHandler
from homemeter.meter.sampler import Meter
from homemeter.restart import Restart
from homemeter.store.config import ConfigService
from homemeter.store.credentials import Credentials, CredentialStore
from homemeter.store.run_state import StartInfo


@dataclass
class RequestStats:
    """webServer counters of `GET /system/statistics` (status < 400 vs >= 400)."""

    requests: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Services:
    meter: Meter
    config: ConfigService
    credentials: Callable[[], Credentials]
    save_energy: Callable[[], Awaitable[None]]
    device_id: str
    started_monotonic: float
    data_dir: Path  # files/ sandbox, backups
    credential_store: CredentialStore  # password changes; `credentials` reads its cache
    restart: Restart  # POST /system/restart and anything that must restart to take effect
    log_control: LogControl  # live log levels and UDP syslog forwarding
    logs: RingHandler = field(default_factory=RingHandler)
    stats: RequestStats = field(default_factory=RequestStats)
    modbus: ModbusService | None = None  # None: no Modbus server in this process (unit tests)
    start: StartInfo = field(default_factory=StartInfo)  # how the previous run ended (crash/info)
    cpu: CpuHistory = field(default_factory=CpuHistory)  # app.py runs its sampler
    issues: IssueRegistry = field(default_factory=IssueRegistry)  # GET /system/issues
