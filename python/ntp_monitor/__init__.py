"""ntp_monitor: ask NTP servers for the time, from Python (docs/python.md).

    from ntp_monitor import NTPClient
    client = NTPClient()                 # config/servers.yaml
    client.get_servers()                 # ['pool.ntp.org', 'time.google.com']
    client.get_time("pool.ntp.org")      # {'offset': 0.0032, 'stratum': 2, 'jitter': 0.0004, ...}

A thin layer over ntp-monitor's C++ client library (the module ntp_monitor._core, built with
pybind11): the queries run in C++ with the GIL released. Failures raise NTPError subclasses.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Union

from . import _core

__all__ = [
    "NTPClient", "NTPError", "NTPTimeoutError", "NTPKissOfDeathError", "NTPRejectedError",
    "NTPDNSError", "NTPAuthenticationError", "NTPNetworkError", "NTPConfigError",
    "DEFAULT_CONFIG",
]

DEFAULT_CONFIG = "config/servers.yaml"


class NTPError(Exception):
    """A query that gave no valid answer. `host`, `address` (None when the name did not
    resolve), `reason` (the library's text) and `result` (the full dict) say more."""

    def __init__(self, message: str, host: Optional[str] = None,
                 result: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.host = host
        self.result = result or {}
        self.address = self.result.get("address")
        self.reason = self.result.get("error") or message


class NTPTimeoutError(NTPError, TimeoutError):
    """No answer within the timeout (every request)."""


class NTPKissOfDeathError(NTPError):
    """The server answered with a Kiss-o'-Death; `code` is its kiss code ("RATE", "DENY")."""

    def __init__(self, message: str, host: Optional[str] = None,
                 result: Optional[Dict[str, Any]] = None):
        super().__init__(message, host, result)
        self.code: str = self.result.get("kod") or ""


class NTPRejectedError(NTPError):
    """Answers came, but none was valid; `reason` is the most frequent rejection
    ("unsynchronized", "bad_stratum", "bogus_origin", ...)."""

    def __init__(self, message: str, host: Optional[str] = None,
                 result: Optional[Dict[str, Any]] = None):
        super().__init__(message, host, result)
        self.reason = self.result.get("rejected") or self.reason


class NTPDNSError(NTPError):
    """The host name did not resolve (or is not a host name at all)."""


class NTPAuthenticationError(NTPError):
    """NTS-KE failed, or no reply passed the NTS or symmetric-key check."""


class NTPNetworkError(NTPError, OSError):
    """The request could not be sent (no route, ...)."""


class NTPConfigError(NTPError, ValueError):
    """A configuration file that does not load, or arguments the library refuses."""


_FAILURES = {
    "timeout": NTPTimeoutError,
    "kiss_of_death": NTPKissOfDeathError,
    "rejected": NTPRejectedError,
    "dns": NTPDNSError,
    "bad_host": NTPDNSError,
    "authentication": NTPAuthenticationError,
    "network": NTPNetworkError,
}


def _error_of(result: Dict[str, Any]) -> NTPError:
    kind = _FAILURES.get(result.get("failure", ""), NTPError)
    host = result.get("host")
    where = host if not result.get("address") or result["address"] == host else \
        f"{host} ({result['address']})"
    if kind is NTPKissOfDeathError:
        message = f"{where}: Kiss-o'-Death {result.get('kod')}"
    elif kind is NTPRejectedError:
        message = f"{where}: every reply rejected ({result.get('rejected')}): {result.get('error')}"
    else:
        message = f"{where}: {result.get('error')}"
    return kind(message, host, result)


PathLike = Union[str, "os.PathLike[str]"]


class NTPClient:
    """Queries NTP servers; `config` is a YAML configuration (docs/configuration.md) whose
    servers get_servers() lists and whose ports and versions get_time() uses. None: no
    configuration (every host on `port` 123, NTPv4)."""

    def __init__(self, config: Optional[PathLike] = DEFAULT_CONFIG):
        path = None if config is None else os.fspath(config)
        try:
            self._core = _core.Client(path)
        except (_core.ConfigLoadError, _core.UsageError) as e:
            raise NTPConfigError(str(e)) from None
        self.config = path

    def get_servers(self) -> List[str]:
        """The configured hosts, in file order."""
        return self._core.servers()

    @staticmethod
    def _args(samples: int, timeout: float, interval: float, dns_timeout: float, port: int,
              version: int, nts: bool, ntske_port: int, ca_file: Optional[PathLike],
              key_file: Optional[PathLike], key_id: Optional[int], key_format: str) -> dict:
        return dict(samples=samples, timeout=float(timeout), interval=float(interval),
                    dns_timeout=float(dns_timeout), port=port, version=version, nts=bool(nts),
                    ntske_port=ntske_port,
                    ca_file=None if ca_file is None else os.fspath(ca_file),
                    key_file=None if key_file is None else os.fspath(key_file),
                    key_id=key_id, key_format=key_format)

    def get_time(self, host: str, samples: int = 4, timeout: float = 2.0, nts: bool = False, *,
                 interval: float = 1.0, dns_timeout: float = 5.0, port: int = 123,
                 version: int = 4, ntske_port: int = 4460, ca_file: Optional[PathLike] = None,
                 key_file: Optional[PathLike] = None, key_id: Optional[int] = None,
                 key_format: str = "auto") -> Dict[str, Any]:
        """Asks every address of `host` ("name", "name:port", "192.0.2.1", "[2001:db8::1]:123")
        `samples` times, `interval` s apart, each request waiting up to `timeout` s, and
        returns the best address' answer: a dict with offset, stratum, jitter and every key of
        `ntp-monitor query --json` (seconds). Raises an NTPError subclass when no address gave a
        valid answer."""
        try:
            result = self._core.get_time(host, **self._args(
                samples, timeout, interval, dns_timeout, port, version, nts, ntske_port,
                ca_file, key_file, key_id, key_format))
        except _core.UsageError as e:
            raise NTPConfigError(str(e), host) from None
        if not result["ok"]:
            raise _error_of(result)
        return result

    def query(self, hosts: Optional[Iterable[str]] = None, samples: int = 4,
              timeout: float = 2.0, nts: bool = False, *, interval: float = 1.0,
              dns_timeout: float = 5.0, port: int = 123, version: int = 4,
              ntske_port: int = 4460, ca_file: Optional[PathLike] = None,
              key_file: Optional[PathLike] = None, key_id: Optional[int] = None,
              key_format: str = "auto") -> Dict[str, Union[Dict[str, Any], NTPError]]:
        """get_time() for many hosts at once (the configured ones without `hosts`),
        concurrently: {host: result dict, or the NTPError it would have raised}. Nothing is
        raised for a host's failure, so one bad server does not hide the others."""
        if isinstance(hosts, str):
            raise NTPConfigError("hosts must be a list of host names, not one string")
        names = list(self.get_servers() if hosts is None else hosts)
        try:
            results = self._core.query(names, **self._args(
                samples, timeout, interval, dns_timeout, port, version, nts, ntske_port,
                ca_file, key_file, key_id, key_format))
        except _core.UsageError as e:
            raise NTPConfigError(str(e)) from None
        return {name: (r if r["ok"] else _error_of(r)) for name, r in zip(names, results)}
