"""What the HTTP layer may use. Handlers read snapshots and send commands; they own no state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from homemeter.component import Components, ComponentStatus
from homemeter.config.channel import ChannelConfig
from homemeter.logs.control import LogControl
from homemeter.logs.ring import RingHandler
from homemeter.meter.payloads import SnapshotBytes
from homemeter.meter.view import MeterControl, MeterView
from homemeter.store.config import ConfigService
from homemeter.store.credentials import Credentials, CredentialStore
from homemeter.store.run_state import StartInfo
from homemeter.system.cpu_load import CpuHistory
from homemeter.system.issues import IssueRegistry
from homemeter.system.restart import Restart


@dataclass
class RequestStats:
    """webServer counters of `GET /system/statistics` (status < 400 vs >= 400)."""

    requests: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Services:
    meter: MeterView  # snapshots, counters
    control: MeterControl  # channel changes, energy reset and restore
    meter_values: SnapshotBytes  # the one cache of the meter-values body (REST and MQTT)
    config: ConfigService  # every change goes through it: validated, applied live, saved
    components: Components  # status of everything that runs beside the meter
    factory_channels: Callable[[int], tuple[ChannelConfig, ...]]  # the source's first-start table
    credentials: Callable[[], Credentials]
    device_id: str
    started_monotonic: float
    data_dir: Path  # files/ sandbox, backups
    credential_store: CredentialStore  # password changes; `credentials` reads its cache
    restart: Restart  # POST /system/restart and anything that must restart to take effect
    log_control: LogControl  # live log levels and UDP syslog forwarding
    logs: RingHandler
    stats: RequestStats
    start: StartInfo  # how the previous run ended (crash/info)
    cpu: CpuHistory  # app.py runs its sampler
    issues: IssueRegistry  # GET /system/issues

    @property
    def channel_count(self) -> int:
        return len(self.meter.latest.channels)

    def status(self, component: str) -> ComponentStatus | None:
        """A component's status by name; None when this build has no such component."""
        found = self.components.get(component)
        return found.status() if found is not None else None
