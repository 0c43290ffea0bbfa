"""mDNS / DNS-SD: advertise the web interface and the Modbus server, and find devices that do.

`records.py` says what is advertised (services, TXT records, names), `addresses.py` which of the
host's addresses, `service.py` runs the responder as a component, `discover.py` is the browser behind
`homemeter discover`.
"""
