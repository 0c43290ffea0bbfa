"""Run-time options: the command line (or HOMEMETER_* environment variables), not the stored file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from homemeter.config.ade7953 import Ade7953Wiring


@dataclass(frozen=True)
class Settings:
    """Run-time options (command line or HOMEMETER_* environment variables)."""

    data_dir: Path
    bind: str = "0.0.0.0"
    http_port: int = 80
    modbus_port: int | None = None  # None: the configuration's (default 502)
    mdns: bool = True
    source: str = "simulator"
    seed: int = 0
    speed: float = 1.0
    # Where the meter's clock starts (epoch s; None: now), `--start-at`: the simulated household's
    # load follows the time of day (at night a thirtieth of noon's), so demos and tests pin it.
    clock_start: float | None = None
    channels: int = 17
    ade7953: Ade7953Wiring = field(default_factory=Ade7953Wiring)  # board for --source ade7953*
    # --source energyme|modbus (one remote meter; `--source config`: the configuration's meters)
    source_url: str | None = None
    meter_model: str | None = None  # modbus: a built-in model
    meter_model_file: str | None = None  # modbus: an absolute path to a model file
    source_user: str | None = None  # HOMEMETER_SOURCE_USER
    source_password: SecretStr | None = None  # HOMEMETER_SOURCE_PASSWORD (repr shows **********)
