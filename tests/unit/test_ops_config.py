"""The operations files (dashboard, Prometheus, compose, Kubernetes) stay consistent with the proxy.

Every realtime_proxy_* name a dashboard query uses must exist in the proxy's exposition, the
probes must hit the endpoints proxy.health serves, and the ConfigMap's proxy.toml must load."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from realtime_proxy.observe.metrics import Metrics, SupervisorMetrics
from realtime_proxy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
DASHBOARD = CONFIG / "grafana-dashboard.json"
PROMETHEUS = CONFIG / "prometheus.yml"
COMPOSE = ROOT / "compose.yaml"
KUBERNETES = CONFIG / "kubernetes-sidecar.yaml"
PROVISIONING = CONFIG / "grafana" / "provisioning"
METRIC_NAME = re.compile(r"realtime_proxy_[a-z_]+")


# ---------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def families() -> dict[str, set[str]]:
    """Family name -> its sample names (with _bucket/_count/_sum/_total/_info) in the exposition."""
    metrics = Metrics()
    # Gauges with labels only appear once a rate_limits.updated set them.
    metrics.rate_limit_remaining.labels("requests").set(1)
    metrics.rate_limit_limit.labels("requests").set(1)
    # The supervisor of several workers adds its own series to their sum.
    text = generate_latest(metrics.registry).decode() + generate_latest(SupervisorMetrics().registry).decode()
    return {
        family.name: {sample.name for sample in family.samples}
        for family in text_string_to_metric_families(text)
    }


@pytest.fixture(scope="module")
def exported_names(families: dict[str, set[str]]) -> set[str]:
    return set(families).union(*families.values())


def _dashboard_metric_names(dashboard: dict[str, Any]) -> set[str]:
    exprs = [t["expr"] for p in _data_panels(dashboard) for t in p["targets"]]
    exprs += _variable_queries(dashboard)
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    result = []
    for panel in panels:
        result.append(panel)
        result.extend(_all_panels(panel.get("panels", [])))
    return result


def _data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in _all_panels(dashboard["panels"]) if p.get("type") != "row"]


def _variable_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        queries.append(query["query"] if isinstance(query, dict) else str(query))
    return queries


def _k8s_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(KUBERNETES.read_text()) if doc]


def _k8s_kind(kind: str) -> dict[str, Any]:
    matches = [doc for doc in _k8s_documents() if doc["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind} in {KUBERNETES.name}"
    return matches[0]


def _proxy_container() -> dict[str, Any]:
    containers = _k8s_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    proxies = [c for c in containers if c["image"].startswith("realtime-repair-proxy")]
    assert len(proxies) == 1
    return proxies[0]


# -------------------------------------------------------------------------------------- dashboard


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "Realtime repair proxy"
    assert dashboard["uid"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"


def test_every_panel_has_targets_on_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    panels = _data_panels(dashboard)
    assert len(panels) >= 20
    for panel in panels:
        assert panel.get("targets"), f"panel {panel['title']!r} has no targets"
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), f"empty expr in {panel['title']!r}"
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [p["id"] for p in _all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_dashboard_metric_names_exist_in_the_exposition(
    dashboard: dict[str, Any], exported_names: set[str]
) -> None:
    used = _dashboard_metric_names(dashboard)
    assert used, "no realtime_proxy_* metric found in the dashboard"
    unknown = sorted(used - exported_names)
    assert not unknown, f"dashboard queries metrics the proxy does not export: {unknown}"


def test_dashboard_covers_every_metric_family(
    dashboard: dict[str, Any], families: dict[str, set[str]]
) -> None:
    used = _dashboard_metric_names(dashboard)
    missing = sorted(name for name, samples in families.items() if not (samples | {name}) & used)
    assert not missing, f"metric families without a panel: {missing}"


def test_dashboard_breaks_spend_and_responses_down_by_model(dashboard: dict[str, Any]) -> None:
    exprs = [t["expr"] for p in _data_panels(dashboard) for t in p["targets"]]
    by_model = [e for e in exprs if re.search(r"sum by \(model\b", e)]
    assert any("realtime_proxy_cost_usd_total" in e for e in by_model)
    assert any("realtime_proxy_responses_total" in e for e in by_model)
    assert any("realtime_proxy_tokens_total" in e for e in by_model)
    units = {p["fieldConfig"]["defaults"].get("unit") for p in _data_panels(dashboard) if "cost" in str(p)}
    assert units == {"currencyUSD"}


def test_histogram_quantiles_aggregate_by_le(dashboard: dict[str, Any]) -> None:
    for panel in _data_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            if "histogram_quantile" in expr:
                assert re.search(r"sum by \(le\b", expr), expr
                assert "_bucket" in expr, expr


# ------------------------------------------------------------------------------------- prometheus


def test_prometheus_static_job() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["realtime-proxy"]
    assert job["scrape_interval"] == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert ["proxy:9464"] in [static["targets"] for static in job["static_configs"]]


def test_prometheus_kubernetes_example_is_valid_yaml() -> None:
    """The pod-annotation job ships commented out (it needs in-cluster credentials); uncomment it."""
    text = PROMETHEUS.read_text()
    block = text.split("# BEGIN kubernetes-pods\n", 1)[1].split("# END kubernetes-pods", 1)[0]
    uncommented = "\n".join(line.removeprefix("#") for line in block.splitlines())
    jobs = yaml.safe_load(uncommented)
    assert isinstance(jobs, list) and len(jobs) == 1
    job = jobs[0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    sources = [tuple(r.get("source_labels", ())) for r in job["relabel_configs"]]
    assert ("__meta_kubernetes_pod_annotation_prometheus_io_scrape",) in sources
    assert ("__meta_kubernetes_pod_annotation_prometheus_io_path",) in sources
    assert ("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port") in sources
    # The combined config (static job + example) is still one valid document.
    combined = yaml.safe_load(text.split("# --- Kubernetes example", 1)[0] + uncommented)
    assert {j["job_name"] for j in combined["scrape_configs"]} >= {"realtime-proxy", "kubernetes-pods"}


# ---------------------------------------------------------------------------------------- compose


def test_compose_services() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"proxy", "prometheus", "grafana"} <= set(services)
    proxy = services["proxy"]
    assert proxy["build"] == "."
    published = {str(port).split(":")[-1] for port in proxy["ports"]}
    assert {"8080", "9464"} <= published
    assert "--fake-upstream" in proxy["command"]
    assert proxy["healthcheck"]["test"]
    assert services["prometheus"]["image"].startswith("prom/prometheus")
    assert services["grafana"]["image"].startswith("grafana/grafana")


def test_compose_mounts_exist() -> None:
    """Every relative bind mount points at a file or folder in the repository."""
    compose = yaml.safe_load(COMPOSE.read_text())
    mounts = [
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("./")
    ]
    assert "./config/prometheus.yml" in mounts
    assert "./config/grafana-dashboard.json" in mounts
    for mount in mounts:
        assert (ROOT / mount).exists(), mount


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load(COMPOSE.read_text())
    targets = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"] if "dashboard.json" in v]
    assert targets and all(t.startswith(provider["options"]["path"] + "/") for t in targets)


# ------------------------------------------------------------------------------------- kubernetes


def test_kubernetes_documents_parse() -> None:
    kinds = [doc["kind"] for doc in _k8s_documents()]
    assert "ConfigMap" in kinds and "Deployment" in kinds


def test_kubernetes_probes_and_ports() -> None:
    proxy = _proxy_container()
    assert {p["containerPort"] for p in proxy["ports"]} >= {8080, 9464}
    assert proxy["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 9464}
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 9464}
    assert proxy["resources"]["requests"] and proxy["resources"]["limits"]


def test_kubernetes_proxy_security_context() -> None:
    context = _proxy_container()["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]


def test_kubernetes_scrape_annotations() -> None:
    annotations = _k8s_kind("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9464"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_kubernetes_agent_points_at_the_sidecar() -> None:
    containers = _k8s_kind("Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for c in containers for e in c.get("env", [])}
    assert env["OPENAI_WEBSOCKET_BASE_URL"] == "ws://127.0.0.1:8080/v1"


def test_kubernetes_configmap_differs_from_the_shipped_config_only_where_its_comment_says() -> None:
    """The comment names host and log_format: every other line (settings and comments) is
    config/proxy.toml's, so a setting added there cannot be forgotten here."""
    shipped = (CONFIG / "proxy.toml").read_text().splitlines()
    sidecar = _k8s_kind("ConfigMap")["data"]["proxy.toml"].splitlines()
    assert len(sidecar) == len(shipped)
    differing = [(ours, theirs) for ours, theirs in zip(sidecar, shipped, strict=True) if ours != theirs]
    assert [ours.split("=")[0].strip() for ours, _ in differing] == ["host", "log_format"]
    assert [theirs.split("=")[0].strip() for _, theirs in differing] == ["host", "log_format"]


def test_kubernetes_configmap_is_a_valid_proxy_config(tmp_path: Path) -> None:
    config_map = _k8s_kind("ConfigMap")
    path = tmp_path / "proxy.toml"
    path.write_text(config_map["data"]["proxy.toml"])
    settings = load_settings(path, environ={})
    assert settings.port == 8080
    assert settings.metrics_port == 9464
    assert settings.metrics_host == "0.0.0.0"  # kubelet probes and Prometheus come via the pod IP

    deployment = _k8s_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_grace
    mounts = {m["name"]: m for m in _proxy_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (name,) = [n for n, v in volumes.items() if v.get("configMap", {}).get("name")]
    assert volumes[name]["configMap"]["name"] == config_map["metadata"]["name"]
    mount = mounts[name]
    assert mount["mountPath"] == "/etc/realtime-proxy/proxy.toml"
    assert mount.get("subPath") == "proxy.toml"
