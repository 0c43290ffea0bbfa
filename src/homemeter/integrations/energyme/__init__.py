"""Reading a running EnergyMe-Home device over its REST API (Digest auth): `homemeter import-device`."""
