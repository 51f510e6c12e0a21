"""The daemon's exporter-toolkit HTTP flags (--web.listen-address, --web.config.file,
--web.telemetry-path) next to its own, and the landing page at / on the metrics port.

The daemon runs on free loopback ports against one simulator. Conflicting combinations must
stop it with exit status 2 and a message naming both flags before it polls anything.
"""

from __future__ import annotations

import pytest

import peers
from helpers import Daemon, fleet_config, http_get


class ToolkitDaemon(Daemon):
    """The daemon started with --web.listen-address instead of --prometheus-port and
    --listen-address."""

    def __init__(self, workdir, config_text, listen: list[str], extra_args=()):
        super().__init__(workdir, config_text, extra_args)
        self.listen_flags = listen

    def argv(self) -> list[str]:
        argv = [str(self.binary), "--config", str(self.config_path),
                "--web-dashboard", str(self.api_port)]
        for address in self.listen_flags:
            argv += ["--web.listen-address", address]
        return argv + self.extra_args


@pytest.fixture
def fleet(simulator) -> str:
    return fleet_config({"sim": simulator()})


@pytest.mark.parametrize("args, named", [
    (["--web.listen-address", "127.0.0.1:0", "--prometheus-port", "0"], "--prometheus-port"),
    (["--web.listen-address", "127.0.0.1:0", "--listen-address", "127.0.0.1"],
     "--listen-address"),
    (["--web-config", "a.yml", "--web.config.file", "a.yml"], "--web.config.file"),
    (["--web.listen-address", "::1:9100"], "brackets"),
    (["--web.telemetry-path", "metrics"], "--web.telemetry-path"),
])
def test_conflicting_or_bad_flags_exit_2(tmp_path, fleet, args, named):
    (tmp_path / "servers.yaml").write_text(fleet)
    out = peers.run_monitor(["--config", str(tmp_path / "servers.yaml"), *args], timeout_s=30)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert named in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr


def test_web_listen_address_serves_metrics_and_dashboard_on_its_host(tmp_path, fleet):
    port = peers.free_tcp_port()
    d = ToolkitDaemon(tmp_path / "d", fleet, [f"127.0.0.1:{port}"])
    d.metrics_port = port
    with d.start():
        assert b"ntp_monitor_build_info" in d.get(port, "/metrics")
        assert d.api("/api/v1/servers")["servers"]


def test_landing_page_links_to_the_dashboard_on_the_requested_host(daemon, fleet):
    d = daemon(fleet)
    status, headers, body = http_get(d.metrics_port, "/",
                                     headers={"Host": f"monitor.test:{d.metrics_port}"})
    page = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, headers)
    assert "default-src 'none'" in headers["content-security-policy"]
    assert f'href="http://monitor.test:{d.api_port}/"' in page
    assert 'href="/metrics"' in page and "<script" not in page
    # The dashboard port still serves the dashboard itself at /.
    assert http_get(d.api_port, "/")[0] == 200


def test_landing_page_refuses_a_hostile_host_header(daemon, fleet):
    d = daemon(fleet)
    _, _, body = http_get(d.metrics_port, "/", headers={"Host": '"><script>x</script>'})
    assert b"<script" not in body and b"port %d of this host" % d.api_port in body


# The next two need the HTTP server of issue #14 (telemetry_path and extra_listen are
# declared in export/http_server.hpp; the cpp-httplib server ignores them).

def test_telemetry_path_moves_the_metrics(tmp_path, fleet):
    d = Daemon(tmp_path / "d", fleet, ["--web.telemetry-path", "/ntp-metrics"])
    with d.start():
        assert b"ntp_monitor_build_info" in d.get(d.metrics_port, "/ntp-metrics")
        assert http_get(d.metrics_port, "/metrics")[0] == 404
        assert b'href="/ntp-metrics"' in d.get(d.metrics_port, "/")


def test_second_listen_address_serves_the_same(tmp_path, fleet):
    first, second = peers.free_tcp_port(), peers.free_tcp_port()
    d = ToolkitDaemon(tmp_path / "d", fleet, [f"127.0.0.1:{first}", f"127.0.0.1:{second}"])
    d.metrics_port = first
    with d.start():
        assert b"ntp_monitor_build_info" in d.get(second, "/metrics")
        assert http_get(second, "/readyz")[0] == 200
