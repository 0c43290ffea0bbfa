"""Channel roles and phases: the one definition used by the meter, API, Modbus and UI."""

from enum import IntEnum, StrEnum


class Role(StrEnum):
    """What a channel measures; decides the sign convention of its active power."""

    LOAD = "load"  # + consuming; negative readings clamped to 0
    GRID = "grid"  # + importing, - exporting
    PV = "pv"  # + generating; negative readings clamped to 0
    BATTERY = "battery"  # + discharging, - charging
    INVERTER = "inverter"  # hybrid inverter AC side: + delivering, - absorbing

    @property
    def code(self) -> int:
        """Numeric form the device stores (load 0, grid 1, pv 2, battery 3, inverter 4)."""
        return _ROLE_CODES[self]

    @property
    def clamps_negative(self) -> bool:
        """Load and PV never run backwards: a negative reading is zeroed whole."""
        return self in (Role.LOAD, Role.PV)


_ROLE_CODES = {Role.LOAD: 0, Role.GRID: 1, Role.PV: 2, Role.BATTERY: 3, Role.INVERTER: 4}

#: Order of the role aggregate blocks on Modbus (200, 300, ... 600) and in the UI.
AGGREGATE_ROLES: tuple[Role, ...] = (Role.GRID, Role.LOAD, Role.PV, Role.BATTERY, Role.INVERTER)


class Phase(IntEnum):
    """Line a channel sits on; 4 is North-American split phase (240 V, voltage x2)."""

    L1 = 1
    L2 = 2
    L3 = 3
    SPLIT = 4
