#!/usr/bin/env python3
"""The project's original quick test, in Python: load the server list, show it, and ask one
server for the time.

    PYTHONPATH=build/python python3 examples/quick_test.py [CONFIG [HOST]]

CONFIG defaults to config/servers.yaml, HOST to the first configured server. Exits 0 when the
server gave a valid answer, 1 when it did not (the NTPError says why), 2 when the configuration
is invalid.
"""

import sys

from ntp_monitor import NTPClient, NTPConfigError, NTPError


def main(argv: list[str]) -> int:
    try:
        client = NTPClient(argv[1]) if len(argv) > 1 else NTPClient()
    except NTPConfigError as e:
        print(e, file=sys.stderr)
        return 2
    servers = client.get_servers()
    print(servers)
    if len(argv) <= 2 and not servers:
        print("no servers configured", file=sys.stderr)
        return 2
    host = argv[2] if len(argv) > 2 else servers[0]
    try:
        result = client.get_time(host)
    except NTPError as e:
        print({"host": host, "error": f"{type(e).__name__}: {e}"})
        return 1
    print({key: result[key] for key in ("offset", "stratum", "jitter")})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
