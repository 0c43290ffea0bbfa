"""The HTTP side: the EnergyMe-compatible REST API and what guards it (digest auth, rate limits)."""
