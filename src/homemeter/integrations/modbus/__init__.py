"""Read-only Modbus TCP server with the EnergyMe-Home register map (reference integrations.md 1).

`register_map.py` is the one place that writes an address; `image.py` turns a snapshot into register
bytes; `server.py` answers FC03 with slices of that image.
"""

from homemeter.config.modbus import ModbusConfig
from homemeter.integrations.modbus.register_map import (
    Register,
    register_map,
    register_map_csv,
    register_map_json,
)
from homemeter.integrations.modbus.server import ModbusServer, ModbusStatus

__all__ = [
    "ModbusConfig",
    "ModbusServer",
    "ModbusStatus",
    "Register",
    "register_map",
    "register_map_csv",
    "register_map_json",
]
