"""The Helm chart (deploy/helm/ntp-monitor), rendered by the real helm.

helm v3.17.1 is the upstream static binary that scripts/install-deps unpacks into .deps/helm
from a pinned npm package (Debian 12 has no helm). There is no Kubernetes API server here, so
nothing is installed; what is checked:

- `helm lint --strict` passes with the defaults and with every optional block on;
  values.schema.json rejects bad values (helm lint and helm template fail on them);
- `helm template` for replicaCount 1 and 3 with every optional block on: selectors match the
  pods' labels, Service ports are container ports, the probes hit /healthz and /readyz on a
  declared port, the securityContext is restricted, and the StatefulSet runs what the
  container test proved (tests/deploy/test_container.py: the image's CMD, EXPOSE, USER and
  VOLUME, read from the Containerfile here) plus the shard flags, each pod's ordinal being a
  distinct shard of replicaCount;
- the PrometheusRule is deploy/prometheus/rules.yml and the dashboard ConfigMap is
  deploy/grafana/ntp-monitor.json (the chart reads both through symbolic links; the packaged
  chart holds their contents);
- the rendered servers.yaml (and a server list beside it) passes `ntp-monitor check-config`;
- NOTES.txt, rendered by helm's own `tpl`;
- every rendered object against the Kubernetes OpenAPI schemas (tests/k8s-schema/validate.js:
  the kubernetes-models packages, installed by scripts/install-deps into .deps/k8s-schema),
  and a broken object fails that check, naming the field.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Optional

import pytest
import yaml

import peers

REPO = peers.REPO
CHART = REPO / "deploy" / "helm" / "ntp-monitor"
RULES = REPO / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "ntp-monitor.json"
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
CONTAINER_TEST = REPO / "tests" / "deploy" / "test_container.py"
SEED_CONFIG = REPO / "config" / "servers.yaml"
INSTALL_DEPS = REPO / "scripts" / "install-deps"
HELM = Path(os.environ.get("NTPMON_HELM", str(REPO / ".deps" / "helm" / "helm")))

RELEASE = "ntp-monitor"
NAMESPACE = "monitoring"
# Every optional block on.
ALL_ON = ["serviceMonitor.enabled=true", "prometheusRule.enabled=true",
          "grafanaDashboard.enabled=true", "podDisruptionBudget.enabled=true",
          "persistence.enabled=true", "serviceAccount.create=true"]


# ------------------------------------------------------------------------------------------
# helm


@pytest.fixture(scope="module")
def helm() -> Path:
    if not HELM.is_file():
        if platform.machine() != "x86_64":
            pytest.skip(f"no helm for {platform.machine()}: the npm package has linux-amd64 only")
        pytest.fail(f"{HELM} not found: run scripts/install-deps", pytrace=False)
    return HELM


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # No kubeconfig: nothing here may reach a cluster.
    env = {**os.environ, "KUBECONFIG": "/dev/null", "HELM_CACHE_HOME": "/tmp/ntpmon-helm-cache",
           "HELM_CONFIG_HOME": "/tmp/ntpmon-helm-config", "HELM_DATA_HOME": "/tmp/ntpmon-helm-data"}
    out = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60, env=env)
    if check:
        assert out.returncode == 0, f"helm {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out


def sets(values: list[str]) -> list[str]:
    return [a for v in values for a in ("--set", v)]


def render(helm: Path, values: list[str], chart: Path = CHART) -> list[dict]:
    out = run_helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE,
                   *sets(values))
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, name: Optional[str] = None) -> dict:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in by_kind(docs, kind)])
    return found[0]


def matches(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels and the DoesNotExist/Exists/In/NotIn expressions) against
    an object's labels, as the API server evaluates it."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        match_labels = selector.get("matchLabels", {})
        expressions = selector.get("matchExpressions", [])
    else:  # a Service's selector: a plain map
        match_labels, expressions = selector, []
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for e in expressions:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        ok = {"Exists": key in labels, "DoesNotExist": key not in labels,
              "In": labels.get(key) in values,
              "NotIn": key not in labels or labels[key] not in values}[op]
        if not ok:
            return False
    return True


# ------------------------------------------------------------------------------------------
# What the container test proved, from the files it checks


def containerfile() -> str:
    return CONTAINERFILE.read_text()


def image_cmd() -> list[str]:
    """The Containerfile's CMD (exec form), which must be test_container.py's DEFAULT_CMD: the
    container test asserts that the built image's Cmd is DEFAULT_CMD."""
    [line] = re.findall(r"^CMD (\[.*\])$", containerfile(), re.M)
    cmd = json.loads(line)
    tree = ast.parse(CONTAINER_TEST.read_text())
    [default] = [ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "DEFAULT_CMD" for t in node.targets)]
    assert cmd == default, "Containerfile CMD differs from test_container.py's DEFAULT_CMD"
    return cmd


def image_ports() -> set[int]:
    [line] = re.findall(r"^EXPOSE (.*)$", containerfile(), re.M)
    return {int(p) for p in line.split()}


def image_uid() -> int:
    [line] = re.findall(r"^USER (\d+):(\d+)$", containerfile(), re.M)
    return int(line[0])


def image_volume() -> str:
    [line] = re.findall(r"^VOLUME (\[.*\])$", containerfile(), re.M)
    [volume] = json.loads(line)
    return volume


def cmake_version() -> str:
    text = (REPO / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*ntp-monitor\s+VERSION\s+([0-9.]+)", text)
    assert match
    return match.group(1)


def arg_value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


# ------------------------------------------------------------------------------------------
# Versions


def test_helm_is_the_pinned_one(helm):
    out = run_helm(helm, "version", "--short").stdout.strip()
    [pinned] = re.findall(r'^HELM_VERSION="(v[0-9.]+)"$', INSTALL_DEPS.read_text(), re.M)
    print(f"\nhelm version: {out} (scripts/install-deps pins {pinned})")
    assert out.startswith(pinned + "+"), out


def test_chart_app_version_is_the_project_version():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["type"] == "application"
    assert chart["appVersion"] == cmake_version()
    # The image's version label too (the container test checks the Containerfile's default).
    assert f"ARG VERSION={cmake_version()}" in containerfile()


# ------------------------------------------------------------------------------------------
# helm lint and values.schema.json


@pytest.mark.parametrize("values", [[], ["replicaCount=3", *ALL_ON, "config.vantage=eu-west"]],
                         ids=["defaults", "all-on"])
def test_lint_strict(helm, values):
    out = run_helm(helm, "lint", "--strict", str(CHART), *sets(values))
    print(f"\nhelm lint --strict {' '.join(values)}:\n{out.stdout.strip()}")
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout


@pytest.mark.parametrize("value,complaint", [
    ("replicaCount=-1", "replicaCount: Must be greater than or equal to 1"),
    ("replicaCount=0", "replicaCount: Must be greater than or equal to 1"),
    ("replicaCount=three", "replicaCount: Invalid type. Expected: integer, given: string"),
    ("ports.metrics=70000", "ports.metrics: Must be less than or equal to 65535"),
    ("config.shard.index=1", "config: Must not validate the schema (not)"),
    ("config.servers=null", "config: Must validate at least one schema (anyOf)"),
    ("image.pullPolicy=Sometimes", "image.pullPolicy: image.pullPolicy must be one of"),
    ("replicaCunt=3", "Additional property replicaCunt is not allowed"),
])
def test_schema_rejects_bad_values(helm, value, complaint):
    for command in (["template", RELEASE], ["lint", "--strict"]):
        out = run_helm(helm, *command, str(CHART), "--set", value, check=False)
        assert out.returncode != 0, (command, value, out.stdout)
        text = out.stdout + out.stderr
        if command[0] == "lint":
            assert "[ERROR] values.yaml: " in text and "1 chart(s) failed" in text, text
        else:
            assert "values don't meet the specifications of the schema(s)" in text, text
        assert complaint in text, text


# ------------------------------------------------------------------------------------------
# The rendered objects


@pytest.fixture(scope="module", params=[1, 3], ids=["replicas-1", "replicas-3"])
def rendered(request, helm):
    n = request.param
    docs = render(helm, [f"replicaCount={n}", *ALL_ON])
    return n, docs


def statefulset(docs: list[dict]) -> dict:
    return one(docs, "StatefulSet")


def main_container(sts: dict) -> dict:
    [container] = sts["spec"]["template"]["spec"]["containers"]
    return container


def test_every_object_is_rendered(rendered):
    _, docs = rendered
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert kinds == sorted([
        ("ConfigMap", "ntp-monitor"), ("ConfigMap", "ntp-monitor-dashboard"),
        ("PodDisruptionBudget", "ntp-monitor"), ("PrometheusRule", "ntp-monitor"),
        ("Service", "ntp-monitor"), ("Service", "ntp-monitor-headless"),
        ("ServiceAccount", "ntp-monitor"), ("ServiceMonitor", "ntp-monitor"),
        ("StatefulSet", "ntp-monitor"), ("Pod", "ntp-monitor-test-readyz")]), kinds
    for d in docs:
        assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert d["metadata"]["labels"]["app.kubernetes.io/version"] == cmake_version()


def test_selectors_match_the_pods(rendered):
    _, docs = rendered
    sts = statefulset(docs)
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert matches(sts["spec"]["selector"], pod_labels)
    for svc in by_kind(docs, "Service"):
        assert matches(svc["spec"]["selector"], pod_labels), svc["metadata"]["name"]
    assert matches(one(docs, "PodDisruptionBudget")["spec"]["selector"], pod_labels)
    # The ServiceMonitor picks the regular Service, not the headless one (no double scrape).
    monitor = one(docs, "ServiceMonitor")["spec"]
    picked = [s["metadata"]["name"] for s in by_kind(docs, "Service")
              if matches(monitor["selector"], s["metadata"]["labels"])]
    assert picked == ["ntp-monitor"], picked
    assert monitor["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # job="ntp-monitor" in every release: the rules select it.
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    assert one(docs, "Service", "ntp-monitor")["metadata"]["labels"][monitor["jobLabel"]] == \
        "ntp-monitor"
    assert 'up{job="ntp-monitor"}' in RULES.read_text()


def test_ports_and_probes(rendered):
    _, docs = rendered
    sts = statefulset(docs)
    container = main_container(sts)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == image_ports()
    args = container["args"]
    assert ports["metrics"] == int(arg_value(args, "--prometheus-port"))
    assert ports["dashboard"] == int(arg_value(args, "--web-dashboard"))
    for svc in by_kind(docs, "Service"):
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports, (svc["metadata"]["name"], p)
            assert p["port"] == ports[p["targetPort"]], (svc["metadata"]["name"], p)
            assert p["protocol"] == "TCP"
    headless = one(docs, "Service", "ntp-monitor-headless")["spec"]
    assert headless["clusterIP"] == "None"
    monitor = one(docs, "ServiceMonitor")["spec"]
    assert [(e["port"], e["path"]) for e in monitor["endpoints"]] == [("metrics", "/metrics")]

    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert (live["path"], ready["path"]) == ("/healthz", "/readyz")
    for probe in (live, ready):
        assert probe["port"] in ports, probe


def test_security_context_is_restricted(rendered):
    _, docs = rendered
    sts = statefulset(docs)
    test_pod = one(docs, "Pod")
    uid = image_uid()
    for where, pod_spec in (("StatefulSet", sts["spec"]["template"]["spec"]),
                            ("helm test pod", test_pod["spec"])):
        pod_sc = pod_spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, where
        assert pod_sc["runAsUser"] == uid and pod_sc["runAsGroup"] == uid, where
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod_spec["automountServiceAccountToken"] is False, where
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert field not in pod_spec, where
        for c in pod_spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == uid, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "privileged" not in sc, where
            assert c["resources"]["limits"]["memory"], where
    # The volume the daemon writes to is writable to that uid (fsGroup), the rest is read-only.
    assert sts["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == uid
    requests = main_container(sts)["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]


def test_statefulset_runs_what_the_container_test_proved(rendered):
    n, docs = rendered
    sts = statefulset(docs)
    container = main_container(sts)
    assert "command" not in container  # the image's ENTRYPOINT, /usr/bin/ntp-monitor
    assert container["image"] == f"ntp-monitor:{cmake_version()}"
    # The image's CMD, then this pod's shard: its ordinal, of replicaCount.
    assert container["args"] == image_cmd() + ["--shard-from-hostname", "--shard-count", str(n)]
    # The configuration the CMD names is the ConfigMap's servers.yaml.
    config_path = Path(arg_value(container["args"], "--config"))
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_mount = mounts[str(config_path.parent)]
    assert config_mount["readOnly"] is True
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    configmap = one(docs, "ConfigMap", volumes[config_mount["name"]]["configMap"]["name"])
    assert config_path.name in configmap["data"]
    # The image's VOLUME is mounted writable: with persistence, a claim per pod.
    history = mounts[image_volume()]
    assert not history.get("readOnly")
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == history["name"] and history["name"] not in volumes


def test_each_replica_is_one_shard(rendered):
    n, docs = rendered
    sts = statefulset(docs)
    assert sts["spec"]["replicas"] == n
    assert sts["spec"]["serviceName"] == "ntp-monitor-headless"
    assert one(docs, "Service", sts["spec"]["serviceName"])["spec"]["clusterIP"] == "None"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    pod_spec = sts["spec"]["template"]["spec"]
    # The hostname is the pod's name (no override), "<statefulset>-<ordinal>".
    assert "hostname" not in pod_spec and "setHostnameAsFQDN" not in pod_spec
    args = main_container(sts)["args"]
    assert "--shard-from-hostname" in args and "--shard" not in args
    assert int(arg_value(args, "--shard-count")) == n
    hostnames = [f"{sts['metadata']['name']}-{i}" for i in range(n)]
    ordinals = [int(re.search(r"(\d+)$", h).group(1)) for h in hostnames]
    assert sorted(ordinals) == list(range(n))  # every shard once, each below the count
    # The PodDisruptionBudget lets at most one shard go at a time.
    assert one(docs, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1, "selector": sts["spec"]["selector"]}


def test_prometheus_rule_is_rules_yml(rendered):
    _, docs = rendered
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_dashboard_configmap_is_the_dashboard(rendered):
    _, docs = rendered
    cm = one(docs, "ConfigMap", "ntp-monitor-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    [(name, text)] = cm["data"].items()
    assert name == "ntp-monitor.json"
    assert json.loads(text) == json.loads(DASHBOARD.read_text())
    assert text == DASHBOARD.read_text()  # byte for byte, not only the same JSON


def test_helm_test_pod_checks_the_service(rendered):
    _, docs = rendered
    pod = one(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    image = main_container(statefulset(docs))["image"]
    svc = one(docs, "Service", "ntp-monitor")
    service_ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    urls = []
    for c in pod["spec"]["containers"]:
        assert c["image"] == image and "command" not in c
        assert c["args"][0] == "healthcheck"
        urls.append(c["args"][1])
    assert sorted(urls) == sorted(
        f"http://ntp-monitor.{NAMESPACE}.svc:{port}/readyz" for port in service_ports.values())


def test_optional_blocks_off_by_default(helm):
    docs = render(helm, [])
    kinds = {d["kind"] for d in docs}
    assert "ServiceMonitor" not in kinds and "PrometheusRule" not in kinds
    sts = statefulset(docs)
    assert sts["spec"]["replicas"] == 1
    assert main_container(sts)["args"][-2:] == ["--shard-count", "1"]
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["history"] == {"name": "history", "emptyDir": {}}


def test_config_change_restarts_the_pods(helm):
    """The pod template carries the ConfigMap's checksum: a new configuration rolls the pods."""
    a = statefulset(render(helm, []))["spec"]["template"]["metadata"]["annotations"]
    b = statefulset(render(helm, ["config.alert_thresholds.offset_ms=10"]))
    b = b["spec"]["template"]["metadata"]["annotations"]
    assert a["checksum/config"] != b["checksum/config"]


# ------------------------------------------------------------------------------------------
# The packaged chart


def test_packaged_chart_holds_the_linked_files(helm, tmp_path):
    """helm follows the symbolic links in files/ (with a warning on stderr) and `helm package`
    stores the files they point to: the package is self-contained and renders the same."""
    out = run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    assert "found symbolic link in path" in out.stderr
    [package] = tmp_path.glob("ntp-monitor-*.tgz")
    assert package.name == "ntp-monitor-0.1.0.tgz"
    with tarfile.open(package) as tar:
        for member, source in (("ntp-monitor/files/rules.yml", RULES),
                               ("ntp-monitor/files/ntp-monitor.json", DASHBOARD)):
            info = tar.getmember(member)
            assert info.isfile(), member
            assert tar.extractfile(info).read() == source.read_bytes(), member
    values = ["replicaCount=3", *ALL_ON]
    assert render(helm, values, chart=package) == render(helm, values)


def test_chart_without_the_linked_files_fails(helm, tmp_path):
    """A copy of the chart whose links dangle, or that lost the files they point to, fails to
    render instead of rendering empty objects."""
    dangling = tmp_path / "dangling" / "ntp-monitor"
    shutil.copytree(CHART, dangling, symlinks=True)  # the links now point nowhere
    out = run_helm(helm, "template", RELEASE, str(dangling), check=False)
    assert out.returncode != 0 and "error evaluating symlink" in out.stderr, out.stderr

    for name, value in (("rules.yml", "prometheusRule.enabled=true"),
                        ("ntp-monitor.json", "grafanaDashboard.enabled=true")):
        copy = tmp_path / name / "ntp-monitor"
        shutil.copytree(CHART, copy)  # the links followed: regular files
        (copy / "files" / name).unlink()
        out = run_helm(helm, "template", RELEASE, str(copy), "--set", value, check=False)
        assert out.returncode != 0
        assert f"files/{name} is missing or empty" in out.stderr, out.stderr


# ------------------------------------------------------------------------------------------
# The rendered configuration, checked by the daemon


def configmap_files(docs: list[dict]) -> dict[str, str]:
    return one(docs, "ConfigMap", "ntp-monitor")["data"]


def check_config(monitor: Path, files: dict[str, str], directory: Path):
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return peers.run_monitor(["check-config", str(directory / "servers.yaml")], timeout_s=30,
                             binary=monitor)


def test_default_config_is_the_seed(helm):
    seed = yaml.safe_load(SEED_CONFIG.read_text())
    assert yaml.safe_load((CHART / "values.yaml").read_text())["config"] == seed
    assert yaml.safe_load(configmap_files(render(helm, []))["servers.yaml"]) == seed


def test_rendered_config_passes_check_config(helm, monitor, tmp_path):
    out = check_config(monitor, configmap_files(render(helm, [])), tmp_path / "default")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"servers\.yaml: ok \(2 servers\)$", out.stdout.strip()), out.stdout

    # A server list beside servers.yaml (extraConfigFiles), with the seed's servers.
    docs = render(helm, ["config.server_lists[0].path=fleet.txt",
                         "extraConfigFiles.fleet\\.txt=192.0.2.10\n192.0.2.11 rack7-b\n"])
    files = configmap_files(docs)
    assert set(files) == {"servers.yaml", "fleet.txt"}
    out = check_config(monitor, files, tmp_path / "list")
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"servers\.yaml: ok \(4 servers\b", out.stdout), out.stdout


def test_rendered_vantage_config_passes_check_config(helm, monitor, tmp_path):
    files = configmap_files(render(helm, ["config.vantage=eu-west"]))
    assert yaml.safe_load(files["servers.yaml"])["vantage"] == "eu-west"
    out = check_config(monitor, files, tmp_path / "vantage")
    if out.returncode != 0 and "unknown key 'vantage'" in out.stderr:
        pytest.skip(f"{monitor} does not know `vantage:` yet (issue 16's daemon part)")
    assert out.returncode == 0, out.stdout + out.stderr


# ------------------------------------------------------------------------------------------
# NOTES.txt


def render_notes(helm: Path, values: list[str], tmp_path: Path) -> str:
    """NOTES.txt as `helm install` prints it. `helm install --dry-run` needs a reachable
    cluster and `helm template` skips NOTES.txt, so a copy of the chart renders it with helm's
    own `tpl` into a ConfigMap."""
    copy = tmp_path / "notes-chart"
    shutil.copytree(CHART, copy)  # links followed
    (copy / "files" / "NOTES.txt").write_text((CHART / "templates" / "NOTES.txt").read_text())
    (copy / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ tpl (.Files.Get "files/NOTES.txt") . | quote }}\n')
    out = run_helm(helm, "template", RELEASE, str(copy), "--namespace", NAMESPACE,
                   "--show-only", "templates/zz-notes.yaml", *sets(values))
    return yaml.safe_load(out.stdout)["data"]["notes"]


def test_notes(helm, tmp_path):
    one_replica = render_notes(helm, [], tmp_path / "a")
    assert "1 replica(s)" in one_replica and "One pod watches every configured server" in one_replica
    assert "helm test ntp-monitor -n monitoring" in one_replica
    assert "WARNING" not in one_replica

    three = render_notes(helm, ["replicaCount=3", "config.vantage=eu-west",
                                "persistence.enabled=true"], tmp_path / "b")
    assert "pod ntp-monitor-N is shard N of 3" in three
    assert 'ntp_monitor_shard_info{index="N",count="3"}' in three
    assert 'vantage="eu-west"' in three
    # Persistence without a history database in the volume is pointed out.
    assert "WARNING: persistence is enabled but config.history.path" in three
    with_history = render_notes(helm, ["persistence.enabled=true",
                                       "config.history.path=/var/lib/ntp-monitor/history.db"],
                                tmp_path / "c")
    assert "WARNING" not in with_history


# ------------------------------------------------------------------------------------------
# The Kubernetes OpenAPI schemas


K8S_SCHEMA = REPO / "tests" / "k8s-schema"
K8S_SCHEMA_DIR = Path(os.environ.get("NTPMON_K8S_SCHEMA_DIR",
                                     str(REPO / ".deps" / "k8s-schema")))
VALIDATOR = K8S_SCHEMA / "validate.js"
# Debian 12's Node.js, the oldest the project supports.
NODE_18 = (18, 19, 0)


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js (NTPMON_NODE, else the one on PATH), with tests/k8s-schema's packages installed
    (npm ci) by scripts/install-deps into .deps/k8s-schema, from the lockfile as it is now."""
    node = os.environ.get("NTPMON_NODE") or shutil.which("node")
    if node is None:
        pytest.fail("node not found: run scripts/install-deps", pytrace=False)
    for name in ("package.json", "package-lock.json", ".npmrc"):
        installed = K8S_SCHEMA_DIR / name
        if not installed.is_file() or installed.read_bytes() != (K8S_SCHEMA / name).read_bytes():
            pytest.fail(f"{K8S_SCHEMA_DIR} is missing or older than tests/k8s-schema: "
                        "run scripts/install-deps", pytrace=False)
    return node


def validate_objects(node: str, docs: list[dict]) -> tuple[int, list[tuple[str, str]]]:
    """The validator's exit status and its verdict per object, ("Kind/name", verdict), in
    input order."""
    out = subprocess.run([node, str(VALIDATOR), str(K8S_SCHEMA_DIR)], input=json.dumps(docs),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode in (0, 1), f"validate.js:\n{out.stdout}\n{out.stderr}"
    verdicts = []
    for line in out.stdout.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9]+/[^:\s]+): (.+)", line)
        assert match, line
        verdicts.append((match.group(1), match.group(2)))
    return out.returncode, verdicts


def label(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def node_versions_admitted(range_text: str) -> tuple[int, ...]:
    """The lowest Node.js version an "engines" range admits; only ">=X[.Y[.Z]]" is accepted, so
    a range this cannot judge fails the test instead of passing unread."""
    match = re.fullmatch(r">=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", range_text.strip())
    assert match, f"engines range not understood: {range_text!r}"
    return tuple(int(part or 0) for part in match.groups())


def test_schema_packages_are_the_pinned_ones(node):
    manifest = json.loads((K8S_SCHEMA / "package.json").read_text())
    lock = json.loads((K8S_SCHEMA / "package-lock.json").read_text())
    assert (K8S_SCHEMA / ".npmrc").read_text() == (REPO / "web" / ".npmrc").read_text()
    pins = manifest["dependencies"]
    assert set(pins) == {"kubernetes-models", "@kubernetes-models/prometheus-operator"}
    for package, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (package, version)  # exact pins
        installed = json.loads(
            (K8S_SCHEMA_DIR / "node_modules" / package / "package.json").read_text())
        print(f"\n{package} {installed['version']}", end="")
        assert installed["version"] == version == lock["packages"][
            f"node_modules/{package}"]["version"]
    # Every package in the locked tree supports Debian 12's Node.js 18 (npm ci enforces it
    # there, .npmrc: engine-strict; this machine's Node.js may be newer).
    for path, entry in lock["packages"].items():
        engines = entry.get("engines", {}).get("node")
        if engines is not None:
            assert node_versions_admitted(engines) <= NODE_18, (path, engines)
        # The same convention as web/package-lock.json: integrity hashes, no download URLs.
        assert "resolved" not in entry, path
        assert path == "" or entry["integrity"].startswith("sha512-"), path
    here = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"\n{len(lock['packages']) - 1} locked packages; Node.js {here} here")


def test_rendered_objects_match_the_openapi_schemas(rendered, node):
    n, docs = rendered
    status, verdicts = validate_objects(node, docs)
    print(f"\nreplicaCount={n}:\n" + "\n".join(f"{o}: {v}" for o, v in verdicts))
    # Every rendered object was checked, each with its own kind's model, and passed.
    assert [o for o, _ in verdicts] == [label(d) for d in docs]
    assert {d["kind"] for d in docs} == {
        "ConfigMap", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceAccount",
        "ServiceMonitor", "StatefulSet", "Pod"}
    assert all(v == "ok" for _, v in verdicts), verdicts
    assert status == 0


@pytest.fixture(scope="module")
def all_on(helm) -> list[dict]:
    return render(helm, ["replicaCount=3", *ALL_ON])


def edit(docs: list[dict], kind: str, change) -> tuple[list[dict], str]:
    """A copy of docs whose object of that kind went through change(obj)."""
    docs = copy.deepcopy(docs)
    target = one(docs, kind)
    change(target)
    return docs, label(target)


def sts_container(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("kind,change,complaint", [
    ("StatefulSet", lambda o: o["spec"].update(replicas="three"),
     "invalid: /spec/replicas must be integer"),
    ("StatefulSet", lambda o: sts_container(o)["ports"][0].update(containerPort="9123"),
     "invalid: /spec/template/spec/containers/0/ports/0/containerPort must be integer"),
    ("StatefulSet", lambda o: sts_container(o)["securityContext"].update(runAsNonRoot="yes"),
     "invalid: /spec/template/spec/containers/0/securityContext/runAsNonRoot must be boolean"),
    ("StatefulSet", lambda o: o["spec"].pop("selector"),
     "invalid: /spec must have required property selector"),
    ("PodDisruptionBudget", lambda o: o["spec"].update(maxUnavailable=[1]),
     "invalid: /spec/maxUnavailable"),
    ("ServiceMonitor", lambda o: o["spec"]["endpoints"][0].update(interval="thirty seconds"),
     "invalid: /spec/endpoints/0/interval must match pattern"),
    ("PrometheusRule", lambda o: o["spec"]["groups"][0].pop("name"),
     "invalid: /spec/groups/0 must have required property name"),
    ("StatefulSet", lambda o: o.update(kind="StatefulSett"),
     "no model for apps/v1 StatefulSett"),
    ("ServiceMonitor", lambda o: o.update(apiVersion="monitoring.coreos.com/v2"),
     "no model for monitoring.coreos.com/v2 ServiceMonitor"),
], ids=["replicas-string", "port-string", "bool-string", "no-selector", "pdb-list",
        "interval-pattern", "rule-group-unnamed", "unknown-kind", "unknown-version"])
def test_schema_check_rejects_a_broken_object(all_on, node, kind, change, complaint):
    """The check has teeth: one broken object among the rendered ones fails the run, with a
    message naming the field, and only that object."""
    docs, broken = edit(all_on, kind, change)
    status, verdicts = validate_objects(node, docs)
    print(f"\n{broken}: {dict(verdicts)[broken]}")
    assert status == 1
    assert [o for o, _ in verdicts] == [label(d) for d in docs]
    for obj, verdict in verdicts:
        if obj == broken:
            assert verdict.startswith(complaint), verdict
        else:
            assert verdict == "ok", (obj, verdict)


def test_what_the_schemas_do_not_check(all_on, node):
    """The schemas (the API's published OpenAPI ones) leave these to the API server, which this
    test does not have: unknown fields and a port number out of range pass. docs/deploy.md says
    so; this fails when a new version of the models starts rejecting them."""
    for change in (lambda o: o["spec"].update(replicaz=3),
                   lambda o: sts_container(o)["ports"][0].update(containerPort=70000)):
        status, verdicts = validate_objects(node, edit(all_on, "StatefulSet", change)[0])
        assert status == 0 and all(v == "ok" for _, v in verdicts), verdicts
