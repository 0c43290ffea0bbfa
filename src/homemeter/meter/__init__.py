"""The meter layer: channel model, sources, sampling and energy accounting."""
