"""The exception tree: one base, one subclass per failure a user can act on.

Each edge maps these once: the CLI to exit codes, the API to status codes, Modbus to exception codes.
"""


class HomemeterError(Exception):
    """Base of every error homemeter raises on purpose."""


class ConfigError(HomemeterError):
    """The configuration file or a configuration change is invalid."""


class StoreError(HomemeterError):
    """Persistent state (energy database, data directory) cannot be read or written."""


class StoreCorrupted(StoreError):
    """A state file is damaged and no good copy was found to recover from."""


class SourceUnavailable(HomemeterError):
    """The measurement source (simulator or ADE7953) cannot deliver readings."""


class PortInUse(HomemeterError):
    """A listening port cannot be bound."""


class ConfigRejected(HomemeterError):
    """A valid configuration change that a component cannot apply now (e.g. a port in use).

    The API answers 409; the previous configuration stays in effect everywhere.
    """


class MdnsUnavailable(HomemeterError):
    """mDNS cannot run here now: no interface to open a socket on, or every name alternative taken."""
