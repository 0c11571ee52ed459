"""Observability artifacts (deploy/observability), checked offline: the Grafana dashboard and the
alert rules use only metrics (and labels) the code defines, compose and Kubernetes carry the same
rules, and the Prometheus scrape config, Grafana provisioning, compose profile and Kustomize
component fit together. `promtool` and `kubectl` checks run where those are installed.

The metrics are found by reading the source (``ast``), not by importing it: a metric exists when
some module under shared/ or services/ constructs a prometheus_client Counter, Gauge, Histogram
or Summary with that literal name.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "deploy" / "observability"
RULES = OBS / "prometheus" / "rules.yml"
PROMETHEUS_CONFIG = OBS / "prometheus" / "prometheus.yml"
DASHBOARD = OBS / "grafana" / "dashboards" / "emostream.json"
DATASOURCES = OBS / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDER = OBS / "grafana" / "provisioning" / "dashboards" / "emostream.yml"
COMPONENT = OBS / "k8s"
PROMETHEUS_RULE = COMPONENT / "prometheusrule.yaml"
OVERLAY = ROOT / "deploy" / "k8s" / "overlays" / "observability"
COMPOSE = ROOT / "docker-compose.yml"
RUNBOOK = ROOT / "docs" / "OPERATIONS.md"
SOURCE_DIRS = [ROOT / "shared", ROOT / "services", ROOT / "src"]  # those that exist
PROFILE = "observability"
# The services Prometheus scrapes: compose service -> (job, env var holding its metrics port).
SCRAPED = {
    "ingest": ("ingest", "EMOSTREAM_INGEST__METRICS_PORT"),
    "worker": ("worker", "EMOSTREAM_WORKER__METRICS_PORT"),
    "worker-gpu": ("worker", "EMOSTREAM_WORKER__METRICS_PORT"),
    "aggregator": ("aggregator", "EMOSTREAM_API__PORT"),
}
METRICS_PATHS = {"ingest": "/metrics", "worker": "/metrics", "aggregator": "/metrics/"}
# Series Prometheus makes itself, not the code.
PROMETHEUS_SERIES = {"up"}
# Labels Prometheus attaches to every scraped series (compose jobs, ServiceMonitors), and le.
TARGET_LABELS = {"job", "instance", "pod", "namespace", "service", "container", "endpoint"}
METRIC_KINDS = ("Counter", "Gauge", "Histogram", "Summary")


# ---- metrics the code defines ---------------------------------------------------------------


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _labelnames(node: ast.AST | None) -> set[str]:
    if isinstance(node, ast.List | ast.Tuple):
        return {v for v in map(_literal, node.elts) if v is not None}
    return set()


def _prometheus_names(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """Names bound to prometheus_client's metric classes, and aliases of the module itself."""
    classes, modules = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client"):
            for alias in node.names:
                if alias.name in METRIC_KINDS:
                    classes[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("prometheus_client"):
                    modules.add(alias.asname or alias.name)
    return classes, modules


def metrics_in_source(text: str) -> dict[str, tuple[str, set[str]]]:
    """{family name: (kind, label names)} for the metrics constructed in one module's source.

    The family name is prometheus_client's: namespace_subsystem_name, a counter's ``_total``
    removed (it is exposed as ``<family>_total``), the unit appended.
    """
    tree = ast.parse(text)
    classes, modules = _prometheus_names(tree)
    found = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in classes:
            kind = classes[func.id]
        elif (
            isinstance(func, ast.Attribute)
            and func.attr in METRIC_KINDS
            and isinstance(func.value, ast.Name | ast.Attribute)
            and ast.unparse(func.value) in modules
        ):
            kind = func.attr
        else:
            continue
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        name = _literal(node.args[0] if node.args else kwargs.get("name"))
        if name is None:
            continue  # not a literal: cannot be checked, and the dashboard may not rely on it
        parts = [
            _literal(kwargs.get("namespace")) or "",
            _literal(kwargs.get("subsystem")) or "",
            name,
        ]
        full = "_".join(p for p in parts if p)
        if kind == "Counter":
            full = full.removesuffix("_total")
        unit = _literal(kwargs.get("unit"))
        if unit and not full.endswith("_" + unit):
            full += "_" + unit
        labels = _labelnames(node.args[2] if len(node.args) > 2 else kwargs.get("labelnames"))
        found[full] = (kind, labels)
    return found


def defined_metrics() -> dict[str, tuple[str, set[str]]]:
    found = {}
    for folder in SOURCE_DIRS:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if "prometheus_client" in text:
                found.update(metrics_in_source(text))
    return found


def exposed_series(metrics: dict[str, tuple[str, set[str]]]) -> dict[str, str]:
    """{series name as scraped: family} (a counter's _total, a histogram's _bucket, ...)."""
    suffixes = {
        "Counter": ["_total", "_created"],
        "Gauge": [""],
        "Histogram": ["_bucket", "_sum", "_count", "_created"],
        "Summary": ["", "_sum", "_count", "_created"],
    }
    return {family + s: family for family, (kind, _) in metrics.items() for s in suffixes[kind]}


# ---- names a PromQL expression uses ---------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^{}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_TOKEN = re.compile(r"\d[\w.]*|[A-Za-z_:][\w:]*")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*),)?\s*[A-Za-z_]\w*\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)


def _strip_grafana(expr: str) -> str:
    """A Grafana query (variables, label_values()) as the PromQL Grafana sends."""
    if m := _LABEL_VALUES.match(expr):
        expr = m.group(1) or ""
    elif m := _QUERY_RESULT.match(expr):
        expr = m.group(1)
    return _GRAFANA_VARIABLE.sub("5m", expr)


def promql_names(expr: str) -> tuple[set[str], set[str], dict[str, set[str]]]:
    """(series names, grouping labels, {series: labels it is matched on}) used by ``expr``."""
    text = _STRING.sub('""', _strip_grafana(expr))
    matched: dict[str, set[str]] = {}
    for m in _SELECTOR.finditer(text):
        if m.group(1) and m.group(1) not in _KEYWORDS:
            matched.setdefault(m.group(1), set()).update(_MATCHER.findall(m.group(2)))
    text = _SELECTOR.sub(lambda m: m.group(1) or "", text)
    text = _RANGE.sub("", text)
    grouping = {label.strip() for g in _GROUPING.findall(text) for label in g.split(",")}
    grouping.discard("")
    text = _GROUPING.sub("", text)
    names = set()
    for m in _TOKEN.finditer(text):
        word = m.group(0)
        if word[0].isdigit() or word.lower() in _KEYWORDS:
            continue
        if text[m.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        names.add(word)
    return names, grouping, matched


def _check_expr(expr: str, where: str, metrics: dict[str, tuple[str, set[str]]]) -> set[str]:
    """Fail unless every series and label ``expr`` uses is defined; return the families."""
    series = exposed_series(metrics)
    names, grouping, matched = promql_names(expr)
    unknown = sorted(n for n in names if n not in series and n not in PROMETHEUS_SERIES)
    assert not unknown, (
        f"{where}: {unknown} not defined by the code (families: {sorted(metrics)}); expr: {expr}"
    )
    families = {series[n] for n in names if n in series}
    known_labels = (
        TARGET_LABELS | {"le", "quantile"} | {label for f in families for label in metrics[f][1]}
    )
    for name, labels in matched.items():
        allowed = TARGET_LABELS | (metrics[series[name]][1] if name in series else set())
        if name in PROMETHEUS_SERIES:
            allowed = TARGET_LABELS
        assert labels <= allowed | {"__name__"}, (
            f"{where}: {name} has no label {sorted(labels - allowed)}; expr: {expr}"
        )
    assert grouping <= known_labels, (
        f"{where}: grouping by {sorted(grouping - known_labels)}, which none of "
        f"{sorted(families)} has; expr: {expr}"
    )
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), where
    return families


# ---- loaders --------------------------------------------------------------------------------


def load_rules() -> dict:
    return yaml.safe_load(RULES.read_text())


def alert_rules() -> list[dict]:
    return [r for g in load_rules()["groups"] for r in g["rules"] if "alert" in r]


def load_dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(panels: list[dict]) -> list[dict]:
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(dashboard_panels(panel.get("panels", [])))
    return out


def dashboard_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) of every panel target and query variable."""
    out = [
        (f"panel {p.get('title')!r}", t["expr"])
        for p in dashboard_panels(dashboard["panels"])
        for t in p.get("targets", [])
        if t.get("expr")
    ]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            out.append((f"variable ${var['name']}", query))
    return out


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def component_docs() -> list[dict]:
    docs = []
    for path in sorted(COMPONENT.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


# ---- the source scan itself -----------------------------------------------------------------


def test_source_scan_reads_prometheus_client_calls():
    source = """
import collections
import prometheus_client as pc
from prometheus_client import Counter, Gauge as G, Histogram

A = Counter("app_requests_total", "doc", ["route"])
B = Counter(
    'app_errors',
    "doc",
    labelnames=("kind",),
)
C = G("app_queue", "doc")
D = Histogram("app_latency", "doc", unit="seconds", buckets=(1, 2))
E = pc.Summary(name="size", documentation="doc", namespace="app")
F = collections.Counter("not a metric")
"""
    assert metrics_in_source(source) == {
        "app_requests": ("Counter", {"route"}),
        "app_errors": ("Counter", {"kind"}),
        "app_queue": ("Gauge", set()),
        "app_latency_seconds": ("Histogram", set()),
        "app_size": ("Summary", set()),
    }
    series = exposed_series(metrics_in_source(source))
    assert {
        "app_requests_total",
        "app_errors_total",
        "app_queue",
        "app_latency_seconds_bucket",
        "app_size_count",
    } <= set(series)
    assert "app_requests" not in series and "app_queue_total" not in series


def test_promql_names():
    expr = (
        'histogram_quantile(0.99, sum by (le, stage) (rate(a_bucket{job="w{x}", '
        'instance=~"$instance"}[$__rate_interval]))) / on (instance) group_left '
        'b offset 5m > 1e3 and sum(c) without (pod) unless d{k!="v"}'
    )
    names, grouping, matched = promql_names(expr)
    assert names == {"a_bucket", "b", "c", "d"}
    assert grouping == {"le", "stage", "instance", "pod"}
    assert matched == {"a_bucket": {"job", "instance"}, "d": {"k"}}
    assert promql_names('label_values(up{job="x"}, instance)')[0] == {"up"}
    assert promql_names("label_values(instance)")[0] == set()


def test_the_code_defines_metrics():
    metrics = defined_metrics()
    assert len(metrics) >= 10, f"found {sorted(metrics)} under {SOURCE_DIRS}: moved?"


# ---- dashboard ------------------------------------------------------------------------------


def test_dashboard_uses_only_defined_metrics_and_labels():
    metrics = defined_metrics()
    families = set()
    queries = dashboard_queries(load_dashboard())
    assert queries
    for where, expr in queries:
        families |= _check_expr(expr, where, metrics)
    assert len(families) >= 10, sorted(families)


def test_dashboard_variables_and_datasource():
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "stream", "instance"} <= set(variables)
    assert variables["datasource"]["query"] == "prometheus"
    metrics = defined_metrics()
    series = exposed_series(metrics)
    # $stream lists the values of a stream label of a metric that has one.
    stream_query = variables["stream"]["query"]["query"]
    m = re.fullmatch(r"label_values\(([\w:]+),\s*(\w+)\)", stream_query)
    assert m and m.group(2) in metrics[series[m.group(1)]][1], stream_query
    panels = [p for p in dashboard_panels(dashboard["panels"]) if p["type"] != "row"]
    ids = [p["id"] for p in dashboard_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$instance"' in target["expr"], (panel["title"], target["expr"])
            if "stream_id" in target["expr"]:
                assert 'stream_id=~"$stream"' in target["expr"], panel["title"]
    # Every stream-labelled metric on the dashboard follows $stream.
    stream_metrics = {f for f, (_, labels) in metrics.items() if "stream_id" in labels}
    for where, expr in dashboard_queries(dashboard):
        if where.startswith("panel") and any(f in expr for f in stream_metrics):
            assert '"$stream"' in expr, where


def test_grafana_provisioning_points_at_the_dashboard_and_prometheus():
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    assert datasource["type"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == datasource["uid"]
    services = load_compose()["services"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"]).groups()
    assert host in services and PROFILE in services[host].get("profiles", [])
    assert port == "9090"
    provider = yaml.safe_load(DASHBOARD_PROVIDER.read_text())["providers"][0]
    assert provider["type"] == "file"
    mounts = compose_mounts(services["grafana"])
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    assert mounts["/etc/grafana/provisioning"] == DATASOURCES.parent.parent


# ---- alert rules ----------------------------------------------------------------------------


def test_rules_use_only_defined_metrics_and_labels():
    metrics = defined_metrics()
    rules = alert_rules()
    assert len(rules) >= 5
    for rule in rules:
        _check_expr(rule["expr"], rule["alert"], metrics)


def test_every_rule_has_severity_and_a_runbook_entry():
    runbook = RUNBOOK.read_text()
    headings = set(re.findall(r"^### (\w+)\s*$", runbook, re.M))
    names = [r["alert"] for r in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook_url"] == (
            f"docs/OPERATIONS.md#{rule['alert'].lower()}"
        ), rule["alert"]
        assert rule["alert"] in headings, f"no runbook entry '### {rule['alert']}'"
    assert headings == set(names), "runbook entries without a rule"


def test_prometheusrule_carries_the_same_rules():
    docs = [d for d in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if d]
    assert len(docs) == 1
    rule = docs[0]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == load_rules()["groups"], (
        "rules.yml changed: run python deploy/observability/render_prometheusrule.py"
    )


needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed"
)


@needs_promtool
def test_promtool_checks_rules_and_config(tmp_path):
    k8s_rules = tmp_path / "k8s-rules.yml"
    k8s_rules.write_text(
        yaml.safe_dump({"groups": yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"]})
    )
    for path in (RULES, k8s_rules):
        out = subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stdout + out.stderr
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["rule_files"] = [str(RULES)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        ["promtool", "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


# ---- docker compose -------------------------------------------------------------------------


def compose_mounts(service: dict) -> dict[str, Path]:
    """{container path: host path} of a service's bind mounts (relative to the compose file)."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = (
            volume.split(":")[:2]
            if isinstance(volume, str)
            else (volume["source"], volume["target"])
        )
        if source.startswith("."):
            out[target] = (COMPOSE.parent / source).resolve()
    return out


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_observability_profile():
    services = load_compose()["services"]
    profiled = {n for n, s in services.items() if PROFILE in s.get("profiles", [])}
    assert profiled == {"prometheus", "grafana"}
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"])
    for name in profiled:
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)  # loopback only
        for target, source in compose_mounts(services[name]).items():
            assert source.exists(), (name, target, source)
    mounts = compose_mounts(services["prometheus"])
    config_path = next(
        a.split("=", 1)[1]
        for a in services["prometheus"]["command"]
        if a.startswith("--config.file=")
    )
    assert mounts[config_path] == PROMETHEUS_CONFIG
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for rule_file in config["rule_files"]:
        assert mounts[rule_file] == RULES
    for name in SCRAPED:  # the monitored services themselves stay in their own profiles
        assert PROFILE not in services[name].get("profiles", []), name


def test_prometheus_scrapes_every_service_on_its_metrics_port():
    services = load_compose()["services"]
    jobs = {
        j["job_name"]: j for j in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    for service, (job, port_var) in SCRAPED.items():
        port = compose_env(services[service])[port_var]
        targets = {t for c in jobs[job].get("static_configs", []) for t in c["targets"]}
        targets |= {
            f"{n}:{c['port']}" for c in jobs[job].get("dns_sd_configs", []) for n in c["names"]
        }
        assert f"{service}:{port}" in targets, (service, job, sorted(targets))
        assert jobs[job].get("metrics_path", "/metrics") == METRICS_PATHS[job], job
    # The rules' job names are the scrape jobs.
    for rule in alert_rules():
        for m in re.finditer(r'job=~?"([^"]*)"', rule["expr"]):
            assert set(m.group(1).split("|")) <= set(jobs), rule["alert"]


# ---- Kubernetes -----------------------------------------------------------------------------


def test_component_lists_its_files():
    k = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1alpha1" and k["kind"] == "Component"
    listed = {(COMPONENT / r).resolve() for r in k["resources"]}
    assert all(p.is_file() for p in listed), k["resources"]
    assert {p.resolve() for p in COMPONENT.glob("*.yaml") if p.name != "kustomization.yaml"} == (
        listed
    )
    overlay = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert overlay["kind"] == "Kustomization"
    assert [(OVERLAY / c).resolve() for c in overlay["components"]] == [COMPONENT.resolve()]


def test_component_core_resources_validate():
    for doc in component_docs():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_servicemonitors_match_the_compose_scrape_jobs():
    monitors = {d["metadata"]["name"]: d for d in component_docs() if d["kind"] == "ServiceMonitor"}
    assert {
        m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for m in monitors.values()
    } == set(METRICS_PATHS)
    for monitor in monitors.values():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        component = monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        # job = the component, as in compose and in the rules
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["path"] == METRICS_PATHS[component], component


needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed"
)


def kustomize(folder: Path) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@needs_kubectl
def test_overlay_renders_and_every_servicemonitor_finds_its_pods():
    docs = kustomize(OVERLAY)
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "emostream", doc["metadata"]["name"]
    base = {(d["kind"], d["metadata"]["name"]) for d in kustomize(OVERLAY / "../../base")}
    assert base <= {(d["kind"], d["metadata"]["name"]) for d in docs}
    [rule] = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == load_rules()["groups"]
    services = [d for d in docs if d["kind"] == "Service"]
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 3
    for monitor in monitors:
        wanted = monitor["spec"]["selector"]["matchLabels"]
        [endpoint] = monitor["spec"]["endpoints"]
        matching = [
            s for s in services if wanted.items() <= (s["metadata"].get("labels") or {}).items()
        ]
        assert len(matching) == 1, (monitor["metadata"]["name"], matching)
        service = matching[0]
        assert monitor["spec"]["jobLabel"] in service["metadata"]["labels"]
        port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
        pods = [
            d
            for d in deployments
            if service["spec"]["selector"].items()
            <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(pods) == 1, monitor["metadata"]["name"]
        container = pods[0]["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[port["targetPort"]] == port["port"], monitor["metadata"]["name"]
        annotations = pods[0]["spec"]["template"]["metadata"].get("annotations", {})
        if "prometheus.io/path" in annotations:  # the base's scrape hints say the same
            assert annotations["prometheus.io/path"] == endpoint["path"]
            assert annotations["prometheus.io/port"] == str(port["port"])
