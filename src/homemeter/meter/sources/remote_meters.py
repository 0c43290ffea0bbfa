"""Building remote meters: the source for `--source energyme|modbus|config` and each meter's poller."""

from __future__ import annotations

from pydantic import ValidationError

from homemeter.config.app import describe
from homemeter.config.channel import ChannelConfig
from homemeter.config.roles import Role
from homemeter.config.settings import Settings
from homemeter.config.sources import MeterSource, SourceKind, SourcesConfig, single_meter
from homemeter.errors import ConfigError
from homemeter.meter.sources.energyme import EnergyMePoller
from homemeter.meter.sources.meter_model import MeterModel, load_model
from homemeter.meter.sources.modbus_meter import ModbusPoller
from homemeter.meter.sources.remote import Poller, RemoteSources

REMOTE_KINDS = ("energyme", "modbus", "config")
#: Channels an EnergyMe device can have (its compile-time maximum): `--source energyme` maps them all.
DEVICE_CHANNELS = 17


def remote_source(settings: Settings) -> RemoteSources:
    """The source of a remote `--source`; its pollers come later, from the sources component."""
    if settings.source in ("energyme", "modbus") and not settings.source_url:
        raise ConfigError(f"--source {settings.source} needs --source-url (HOMEMETER_SOURCE_URL)")
    if settings.source == "modbus":
        model = _model(settings)
        return RemoteSources(lambda n: model_channels(model, n))
    return RemoteSources(lambda n: tuple(ChannelConfig.default(i) for i in range(n)))


def _model(settings: Settings) -> MeterModel:
    if (settings.meter_model is None) == (settings.meter_model_file is None):
        raise ConfigError("--source modbus needs --meter-model or --meter-model-file (one of them)")
    return load_model(settings.meter_model, settings.meter_model_file)


def model_channels(model: MeterModel, count: int) -> tuple[ChannelConfig, ...]:
    """A first start on a Modbus meter: its channels active (grid role: the meter's import is +)."""
    channels = []
    for i in range(count):
        if i < len(model.channels):
            ch = model.channels[i]
            label = f"{model.model.upper()} {ch.label}"
            channels.append(
                ChannelConfig(
                    index=i, active=True, label=label, phase=ch.phase, groupLabel="Grid", role=Role.GRID
                )
            )
        else:
            channels.append(ChannelConfig.default(i).model_copy(update={"active": False}))
    return tuple(channels)


def effective_sources(settings: Settings, configured: SourcesConfig, channel_count: int) -> SourcesConfig:
    """The meters to poll: the configuration's (`--source config`) or the one the flags name."""
    if settings.source == "config":
        return configured
    assert settings.source_url is not None  # checked by remote_source
    kind = SourceKind(settings.source)
    password = settings.source_password.get_secret_value() if settings.source_password else None
    count = len(_model(settings).channels) if kind is SourceKind.MODBUS else DEVICE_CHANNELS
    given = {
        "kind": kind.value,
        "url": settings.source_url,
        "user": settings.source_user,
        "password": password,
        "model": settings.meter_model,
        "modelFile": settings.meter_model_file,
    }
    try:
        return single_meter(given, min(channel_count, count), configured)
    except ValidationError as err:
        raise ConfigError(f"--source {kind.value}: {describe(err)}") from err


def build_pollers(config: SourcesConfig) -> tuple[Poller, ...]:
    """One poller per meter (a model file is read here: `ConfigError` when it cannot be)."""
    return tuple(build_poller(meter) for meter in config.meters)


def build_poller(meter: MeterSource) -> Poller:
    if meter.kind is SourceKind.ENERGYME:
        return EnergyMePoller(meter)
    return ModbusPoller(meter, load_model(meter.model, meter.modelFile))
