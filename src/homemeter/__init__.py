"""homemeter: a multi-channel home energy monitor, wire-compatible with EnergyMe-Home."""

__version__ = "0.1.0"
