"""podman and a minimal Debian 12 base image for the deployment tests.

Responsible for: a containers.conf that makes podman work on this kind of machine (runc,
explicit ulimits), running podman with it, bootstrapping a minimal Debian 12 root with
mmdebstrap from the host's own Debian package sources and importing it as the base image, and
passing the host's CA certificates into containers (so that a machine whose TLS is intercepted
by a proxy still verifies every download). Not responsible for: asserting anything.

Rules: every container runs with `--network host` (never podman's bridge network, whose
traffic would leave loopback through NAT); all traffic stays on loopback or goes to the
package registries the host itself uses.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
# Scratch space of the deployment tests (git-ignored as build*/).
WORK = Path(os.environ.get("NTPMON_DEPLOY_DIR", str(REPO / "build-deploy"))).resolve()

# The minimal root: a new Debian 12 machine (test-fresh, the Debian package's install).
BASE_IMAGE = "localhost/ntp-monitor-base:bookworm"
# The name the Containerfile's FROM uses. tests/deploy/test_container.py gives it to its own
# bootstrapped stand-in for the slim image, so that `podman build --pull=never` builds against
# that and never pulls from a registry.
SLIM_TAG = "docker.io/library/debian:bookworm-slim"

# Where the host's CA bundle appears inside containers (read-only bind mount).
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
CONTAINER_CA = "/run/host-ca/ca-certificates.crt"

# The host's Debian sources (deb822). mmdebstrap uses them for the new root, so it downloads
# from wherever this machine's apt is set up to (a mirror, a caching proxy).
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")


def containers_conf() -> Path:
    """A containers.conf for this machine; podman reads it through CONTAINERS_CONF.

    - runtime runc: crun (podman's default) refuses this machine's hybrid cgroup layout
      ("cgroups in hybrid mode not supported").
    - default_ulimits: without them the runtime copies the host's limits into the container
      and the kernel refuses one of them (EPERM, the container never starts). nofile is the
      host's own soft:hard limit; nproc the same value as the host is refused too, so it is a
      fixed 4096 (root in the container is exempt from it anyway).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = soft if hard == resource.RLIM_INFINITY else hard
    conf = WORK / "containers.conf"
    WORK.mkdir(parents=True, exist_ok=True)
    text = (
        "# Written by tests/deploy/podman_env.py (docs/testing.md says why).\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={soft}:{hard}", "nproc=4096:4096"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    return conf


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["CONTAINERS_CONF"] = str(containers_conf())
    return e


def podman(*args: str, check: bool = True, timeout: float = 600,
           capture: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Runs `podman ARGS...`; on failure (check) raises with podman's output."""
    podman_bin = shutil.which("podman")
    if podman_bin is None:
        raise RuntimeError("podman not installed: scripts/install-deps installs it")
    out = subprocess.run([podman_bin, *args], env=env(), text=True, timeout=timeout,
                         capture_output=capture, input=input)
    if check and out.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} exited {out.returncode}:\n"
                           f"{out.stdout}\n{out.stderr}")
    return out


# Proxy settings a machine behind a proxy needs in its containers too.
_PASSED_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
               "npm_config_registry")


def ca_run_args() -> list[str]:
    """`podman run` / `podman build` arguments that hand the host's CA bundle to the
    container, and point OpenSSL, Node.js and npm at it (verification stays on: a machine whose
    TLS is intercepted by a proxy has the proxy's CA in that bundle), plus the host's proxy
    settings, where it has any."""
    args = [
        "-v", f"{HOST_CA}:{CONTAINER_CA}:ro",
        "-e", f"NODE_EXTRA_CA_CERTS={CONTAINER_CA}",
        "-e", f"SSL_CERT_FILE={CONTAINER_CA}",
        "-e", f"npm_config_cafile={CONTAINER_CA}",
    ]
    for name in _PASSED_ENV:
        if name in os.environ:
            args += ["-e", f"{name}={os.environ[name]}"]
    return args


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def bootstrap_image(image: str, *, force: bool = False, mmdebstrap_args: Sequence[str] = (),
                    purpose: str = "") -> str:
    """Builds a minimal Debian 12 root (`mmdebstrap --variant=minbase bookworm`, from the
    host's Debian sources, plus mmdebstrap_args) and imports it into podman as `image`.
    Reuses the image that this checkout bootstrapped before under that name
    (build-deploy/<name>.id) unless force.

    The root gets apt's setting for the host CA bundle (used only where the bundle is mounted:
    apt verifies https mirrors with it, a proxy's CA included) and nothing else: no make, no
    compiler, no Python."""
    slug = image.rsplit("/", 1)[-1].replace(":", "-")
    marker = WORK / f"{slug}.id"
    if not force and marker.exists() and image_exists(image):
        image_id = podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
        if marker.read_text().strip().removeprefix("sha256:") == image_id.removeprefix("sha256:"):
            return image
    WORK.mkdir(parents=True, exist_ok=True)
    tarball = WORK / f"{slug}.tar"
    tarball.unlink(missing_ok=True)
    started = time.monotonic()
    ca_conf = 'Acquire::https::CAInfo "' + CONTAINER_CA + '";'
    hook = f"if [ -s {HOST_CA} ]; then echo '{ca_conf}' > \"$1/etc/apt/apt.conf.d/50host-ca\"; fi"
    cmd = ["mmdebstrap", "--variant=minbase", "--quiet", *mmdebstrap_args,
           f"--customize-hook={hook}", "bookworm", str(tarball), str(HOST_SOURCES)]
    out = subprocess.run(cmd, text=True, capture_output=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    image_id = podman("import", "--change", 'CMD ["/bin/bash"]', str(tarball),
                      image).stdout.strip().splitlines()[-1]
    tarball.unlink(missing_ok=True)
    marker.write_text(image_id + "\n")
    # The image this one replaces is now untagged, and so are the layers built on it (the
    # container image's build stage, about 1 GB): nothing can use them any more. Every run
    # of CI bootstraps anew, so without this the machine's disk fills up run after run.
    podman("image", "prune", "--force")
    print(f"\nbase image {image}{purpose} ({image_id[:19]}) bootstrapped in "
          f"{time.monotonic() - started:.0f} s")
    return image


def bootstrap_base_image(force: bool = False) -> str:
    """BASE_IMAGE, a new Debian 12 machine as `mmdebstrap --variant=minbase` makes it;
    test-fresh always bootstraps it anew (force)."""
    return bootstrap_image(BASE_IMAGE, force=force)


def run_container(image: str, command: Sequence[str], *, extra: Sequence[str] = (),
                  timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """`podman run --rm --network host [extra] IMAGE COMMAND...`."""
    return podman("run", "--rm", "--network", "host", *extra, image, *command,
                  timeout=timeout, check=check)
