"""A Toxiproxy-compatible TCP fault-injection proxy: Toxiproxy's HTTP API v2 on asyncio.

Start it with ``python -m toxiproxy_server --host 0.0.0.0 --port 8474`` (or the
``toxiproxy-server`` console script) and drive it with any Toxiproxy client.
"""

#: Reported by GET /version: the Toxiproxy API release emulated, tagged as this port.
__version__ = "2.9.0-petcd.1"
