import os
from typing import Any, Dict, Iterable, List, Optional, Union

PathLike = Union[str, os.PathLike[str]]
DEFAULT_CONFIG: str

class NTPError(Exception):
    host: Optional[str]
    address: Optional[str]
    reason: str
    result: Dict[str, Any]
    def __init__(self, message: str, host: Optional[str] = ...,
                 result: Optional[Dict[str, Any]] = ...) -> None: ...

class NTPTimeoutError(NTPError, TimeoutError): ...

class NTPKissOfDeathError(NTPError):
    code: str

class NTPRejectedError(NTPError): ...
class NTPDNSError(NTPError): ...
class NTPAuthenticationError(NTPError): ...
class NTPNetworkError(NTPError, OSError): ...
class NTPConfigError(NTPError, ValueError): ...

class NTPClient:
    config: Optional[str]
    def __init__(self, config: Optional[PathLike] = ...) -> None: ...
    def get_servers(self) -> List[str]: ...
    def get_time(self, host: str, samples: int = ..., timeout: float = ..., nts: bool = ..., *,
                 interval: float = ..., dns_timeout: float = ..., port: int = ...,
                 version: int = ..., ntske_port: int = ..., ca_file: Optional[PathLike] = ...,
                 key_file: Optional[PathLike] = ..., key_id: Optional[int] = ...,
                 key_format: str = ...) -> Dict[str, Any]: ...
    def query(self, hosts: Optional[Iterable[str]] = ..., samples: int = ...,
              timeout: float = ..., nts: bool = ..., *, interval: float = ...,
              dns_timeout: float = ..., port: int = ..., version: int = ...,
              ntske_port: int = ..., ca_file: Optional[PathLike] = ...,
              key_file: Optional[PathLike] = ..., key_id: Optional[int] = ...,
              key_format: str = ...) -> Dict[str, Union[Dict[str, Any], NTPError]]: ...
