"""Implementations of the `SampleSource` seam: the household simulator (and the ADE7953)."""
