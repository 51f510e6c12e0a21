"""The PEP 517 build backend of `pip install .`: builds the ntp_monitor extension with CMake and
packs it into a wheel, with nothing but the standard library.

It needs no package from an index (pyproject.toml: requires = []), so `pip install .` works
offline, with or without build isolation; what it needs is what `make build` needs (cmake, a
C++ compiler, the -dev packages of scripts/install-deps, pybind11-dev and python3-dev).

The build directory is build-wheel/ in the source tree, so that ccache reuses what `make build`
compiled (same flags: RelWithDebInfo). The extension is built for the interpreter that runs
this backend (Python3_EXECUTABLE).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ntp_monitor"


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _dist_name() -> str:
    return _project()["name"].replace("-", "_")


def _tag() -> str:
    impl = f"cp{sys.version_info.major}{sys.version_info.minor}"
    abi = impl + getattr(sys, "abiflags", "")
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{impl}-{abi}-{platform}"


def _metadata() -> str:
    project = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}", f"Summary: {project.get('description', '')}",
             f"Requires-Python: {project.get('requires-python', '>=3.9')}"]
    license_text = project.get("license", {}).get("text")
    if license_text:
        lines.append(f"License: {license_text}")
    return "\n".join(lines) + "\n"


def _build_extension() -> Path:
    build = Path(os.environ.get("NTPMON_WHEEL_BUILD_DIR", ROOT / "build-wheel"))
    jobs = os.environ.get("JOBS", "2")
    configure = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                 "-DNTPMON_WERROR=ON", "-DNTPMON_TESTS=OFF", "-DNTPMON_BENCH=OFF",
                 "-DNTPMON_PYTHON=ON", f"-DPython3_EXECUTABLE={sys.executable}"]
    for argv in (configure, ["cmake", "--build", str(build), "-j", jobs,
                             "--target", "ntpmon_python"]):
        # The build's output goes to stderr: pip shows it with -v, and on failure.
        subprocess.run(argv, check=True, stdout=sys.stderr)
    return build / "python" / PACKAGE


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    package_dir = _build_extension()
    version = _project()["version"]
    dist_info = f"{_dist_name()}-{version}.dist-info"
    wheel_name = f"{_dist_name()}-{version}-{_tag()}.whl"
    files: list[tuple[str, bytes]] = []
    for path in sorted(package_dir.iterdir()):
        if path.is_file() and (path.suffix in (".py", ".pyi", ".so") or path.name == "py.typed"):
            files.append((f"{PACKAGE}/{path.name}", path.read_bytes()))
    if not any(name.endswith(".so") for name, _ in files):
        raise RuntimeError(f"no extension module in {package_dir}")
    files.append((f"{dist_info}/METADATA", _metadata().encode()))
    wheel = (f"Wheel-Version: 1.0\nGenerator: ntp_monitor_build\nRoot-Is-Purelib: false\n"
             f"Tag: {_tag()}\n")
    files.append((f"{dist_info}/WHEEL", wheel.encode()))
    files.append((f"{dist_info}/top_level.txt", f"{PACKAGE}\n".encode()))
    record = [_record_line(name, data) for name, data in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    target = Path(wheel_directory) / wheel_name
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel_name
