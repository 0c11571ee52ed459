"""Deployment artifacts, checked offline: compose against the Compose Specification, Kubernetes
manifests against the Kubernetes OpenAPI schemas (KEDA's ScaledObject against a hand-written one),
the settings the services would build from them, and what the Dockerfile installs."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from emostream.aggregator.api.auth import API_KEYS_SETTING
from emostream.config import AggregatorSettings, IngestSettings, WorkerSettings
from emostream.errors import ConfigError
from emostream.runtime.api_keys import check_bind
from emostream.runtime.secret_check import refuse_placeholder_secrets
from emostream.settings import KafkaOptions

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
KEDA_SCHEMA = ROOT / "tests" / "schemas" / "keda_scaledobject_v1alpha1.json"
KEDA_AUTH_SCHEMA = ROOT / "tests" / "schemas" / "keda_triggerauthentication_v1alpha1.json"
# The newest Kubernetes the installed kubernetes-validate has schemas for.
K8S_VERSION = kubernetes_validate.latest_version()
SETTINGS_BY_COMMAND = {
    "ingest": IngestSettings,
    "worker": WorkerSettings,
    "aggregator": AggregatorSettings,
}
# settings.kafka.sasl_mechanism in the words of KEDA's Kafka scaler (its `sasl` parameter).
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
PLACEHOLDER_KEYS = ["change-me-read"]
# A user's .env, as .env.example says to make it (`openssl rand -hex 32`): compose has no default
# for these secrets.
DOT_ENV = {
    "EMOSTREAM_API__READ_KEYS": '["9c1f4e0b7a3d42e6b5c8a1f0d3e7b2c4"]',
    "EMOSTREAM_API__ADMIN_KEYS": '["4b8e2d6f1a9c43e7b0d5f2a8c6e1b3d9"]',
    "EMOSTREAM_ALERTS__WEBHOOK_SECRET": "e3a7c1f9b5d24086a2c4e6f8b0d1a3c5",
    "EMOSTREAM_INGEST__API_KEYS": '["7d2b9f4e1c6a48b3a5e0c8f2d4b6a1e9"]',
}


# ---- helpers --------------------------------------------------------------------------------


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}.
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose interpolation with an (empty by default) environment: defaults apply."""
    env = env or {}

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group(1), m.group(2), m.group(3)
        # With a colon, an empty value counts as unset: ${VAR:?message} fails on it too.
        if name in env and (env[name] or op not in (":-", ":?")):
            return env[name]
        if op in (":-", "-"):
            return default
        raise AssertionError(f"${{{name}}} has no default: compose fails without a .env")

    return _VAR.sub(sub, value)


def compose_variables() -> set[str]:
    return {m.group(1) for m in _VAR.finditer(COMPOSE.read_text()) if m.group(1)}


def compose_env(service: dict, dot_env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's environment as compose builds it from ``dot_env`` (default: ``DOT_ENV``)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    out = {}
    for key, value in env.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out[key] = interpolate(text, DOT_ENV if dot_env is None else dot_env)
    return out


def topic_specs(script: str) -> dict[str, dict]:
    """Topics a kafka-topics.sh script creates: {name: {"partitions": n, "configs": {...}}}."""
    specs = {}
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if "--topic" not in words or "--partitions" not in words:
            continue
        configs = dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--config")
        specs[words[words.index("--topic") + 1]] = {
            "partitions": int(words[words.index("--partitions") + 1]),
            "configs": configs,
        }
    return specs


def compose_topics() -> dict[str, dict]:
    init = load_compose()["services"]["kafka-init"]
    return topic_specs("\n".join(init["command"]).replace("$$", "$"))


def k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def kustomizations() -> list[Path]:
    return [p for p in k8s_files() if p.name == "kustomization.yaml"]


def patch_files() -> set[Path]:
    """Strategic-merge patches (whole resources, partly): those without a ``target``."""
    out = set()
    for kfile in kustomizations():
        for patch in yaml.safe_load(kfile.read_text()).get("patches", []):
            if "path" in patch and "target" not in patch:
                out.add((kfile.parent / patch["path"]).resolve())
    return out


def json_patches() -> list[tuple[Path, dict, list[dict]]]:
    """JSON 6902 patches: (file, target, operations)."""
    out = []
    for kfile in kustomizations():
        for patch in yaml.safe_load(kfile.read_text()).get("patches", []):
            if "path" in patch and "target" in patch:
                path = (kfile.parent / patch["path"]).resolve()
                out.append((path, patch["target"], yaml.safe_load(path.read_text())))
    return out


def manifest_docs() -> list[tuple[Path, dict]]:
    """Complete resources (not kustomization files, not patches) of every file under deploy/k8s."""
    patches = patch_files() | {path for path, _, _ in json_patches()}
    return [
        (p, d)
        for p in k8s_files()
        if p.name != "kustomization.yaml" and p.resolve() not in patches
        for d in load_docs(p)
    ]


def base_docs() -> dict[tuple[str, str], dict]:
    base = K8S / "base"
    listed = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    docs = [d for name in listed for d in load_docs(base / name)]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def k8s_topics() -> dict[str, dict]:
    job = base_docs()[("Job", "emostream-topics")]
    return topic_specs("\n".join(job["spec"]["template"]["spec"]["containers"][0]["args"]))


def keda_validator(path: Path = KEDA_SCHEMA) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_resource(doc: dict) -> None:
    if doc["kind"] in ("ScaledObject", "TriggerAuthentication"):
        schema = KEDA_SCHEMA if doc["kind"] == "ScaledObject" else KEDA_AUTH_SCHEMA
        errors = list(keda_validator(schema).iter_errors(doc))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
        behavior = (
            doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        )
        if behavior is not None:  # KEDA hands it to the HPA it creates: the HPA's schema applies
            validate_resource(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": doc["metadata"]["name"]},
                    "spec": {
                        "scaleTargetRef": {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": doc["spec"]["scaleTargetRef"]["name"],
                        },
                        "minReplicas": 1,
                        "maxReplicas": doc["spec"]["maxReplicaCount"],
                        "behavior": behavior,
                    },
                }
            )
        return
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {e.message}")


def pod_env(container: dict, docs: dict[tuple[str, str], dict]) -> dict[str, str]:
    """A container's environment as the kubelet builds it (Secrets: their placeholder values)."""

    def source(kind: str, name: str) -> dict[str, str]:
        doc = docs[(kind, name)]
        if kind == "Secret":
            import base64

            decoded = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
            return decoded | (doc.get("stringData") or {})
        return doc.get("data") or {}

    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            env.update(source("ConfigMap", ref["configMapRef"]["name"]))
        if "secretRef" in ref:
            env.update(source("Secret", ref["secretRef"]["name"]))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif key_ref := item.get("valueFrom", {}).get("configMapKeyRef"):
            env[item["name"]] = source("ConfigMap", key_ref["name"])[key_ref["key"]]
        elif key_ref := item.get("valueFrom", {}).get("secretKeyRef"):
            env[item["name"]] = source("Secret", key_ref["name"])[key_ref["key"]]
    return env


@pytest.fixture
def build_settings(monkeypatch, tmp_path):
    """Build a service's Settings from exactly ``env`` (no inherited EMOSTREAM_*, no .env)."""
    monkeypatch.chdir(tmp_path)

    def build(command: str, env: dict[str, str]):
        for key in [k for k in os.environ if k.startswith("EMOSTREAM_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return SETTINGS_BY_COMMAND[command]()

    return build


# ---- docker compose -------------------------------------------------------------------------


def test_compose_matches_the_compose_specification():
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errors = sorted(cls(schema).iter_errors(load_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_compose_startup_order_and_gpu_profile():
    services = load_compose()["services"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    for name in ("kafka", "redis", "aggregator", "worker", "worker-gpu"):
        assert "healthcheck" in services[name], name
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("aggregator", "worker", "worker-gpu", "ingest"):
        assert services[name]["depends_on"]["kafka-init"]["condition"] == (
            "service_completed_successfully"
        ), name
    assert services["aggregator"]["depends_on"]["redis"]["condition"] == "service_healthy"
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["target"] == "cuda"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "profiles" not in services["worker"]


def test_compose_topics():
    topics = compose_topics()
    assert {t: s["partitions"] for t, s in topics.items()} == {
        "emostream.frames": 12,
        "emostream.events": 12,
        "emostream.changes": 12,
        "emostream.dlq": 3,
        "emostream.alerts": 3,
        "emostream.cameras": 12,
    }
    assert topics["emostream.cameras"]["configs"]["cleanup.policy"] == "compact"  # registry
    frames = topics["emostream.frames"]["configs"]
    assert int(frames["retention.ms"]) <= 15 * 60 * 1000
    assert int(frames["segment.ms"]) <= int(frames["retention.ms"])  # else retention never bites
    assert k8s_topics() == topics  # compose and Kubernetes create the same topics


def test_dead_letter_topic_fits_the_largest_dead_letter(build_settings):
    """A rejected frame comes back with its reason headers, cut by the services to the producer's
    cap (max_message_bytes, shared/emostream/kafka/dead_letters.py): the topic must take it all."""
    for topics in (compose_topics(), k8s_topics()):
        frames = int(topics["emostream.frames"]["configs"]["max.message.bytes"])
        dlq = int(topics["emostream.dlq"]["configs"]["max.message.bytes"])
        assert dlq >= frames
    docs = base_docs()
    worker = docs[("Deployment", "emostream-worker")]["spec"]["template"]["spec"]["containers"][0]
    cap = build_settings("worker", pod_env(worker, docs)).kafka.max_message_bytes
    # Kafka's limit counts the record batch; 12 bytes of log overhead as the frames topic allows.
    assert int(k8s_topics()["emostream.dlq"]["configs"]["max.message.bytes"]) >= cap + 12


def test_env_example_lists_every_variable_compose_reads():
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))
    assert compose_variables() == listed


# ---- Kubernetes -----------------------------------------------------------------------------


def test_kustomizations_list_existing_files():
    for kfile in kustomizations():
        k = yaml.safe_load(kfile.read_text())
        assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
        listed = set()
        for entry in k.get("resources", []):
            target = (kfile.parent / entry).resolve()
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (kfile, entry)
            listed.add(target)
        for patch in k.get("patches", []):
            target = (kfile.parent / patch["path"]).resolve()
            assert target.is_file(), (kfile, patch)
            listed.add(target)
        # Every manifest beside a kustomization is part of it: nothing silently left out.
        siblings = {p.resolve() for p in kfile.parent.glob("*.yaml") if p.name != kfile.name}
        assert siblings <= listed, (kfile, sorted(siblings - listed))
    assert not (K8S / "emostream.yaml").exists()


@pytest.mark.parametrize(
    "path,doc",
    manifest_docs(),
    ids=lambda v: v.name if isinstance(v, Path) else f"{v['kind']}/{v['metadata']['name']}",
)
def test_manifest_validates(path, doc):
    validate_resource(doc)


def _pointer(doc: object, pointer: str) -> object:
    for part in pointer.strip("/").split("/"):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def test_patches_target_base_resources():
    base = base_docs()
    for path in patch_files():
        for doc in load_docs(path):
            assert (doc["kind"], doc["metadata"]["name"]) in base, (path, doc["kind"])
    for path, target, ops in json_patches():
        doc = base[(target["kind"], target["name"])]
        for op in ops:
            assert op["op"] == "replace", (path, op)  # replace only: never restate a whole list
            _pointer(doc, op["path"])  # the field exists in the base
            assert not op["path"].endswith("bootstrapServers"), path  # set once, in the base


def test_worker_scaling_and_shutdown(build_settings, monkeypatch):
    docs = base_docs()
    scaled = docs[("ScaledObject", "emostream-worker")]["spec"]
    worker = docs[("Deployment", "emostream-worker")]
    assert scaled["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]  # KEDA owns the count; apply must not reset it
    frames_partitions = min(
        compose_topics()["emostream.frames"]["partitions"],
        k8s_topics()["emostream.frames"]["partitions"],
    )
    assert scaled["maxReplicaCount"] <= frames_partitions
    for path in patch_files():
        for doc in load_docs(path):
            assert doc["kind"] != "ScaledObject", path  # a merge patch would replace the triggers
    for _, target, ops in json_patches():
        for op in ops:
            if target["kind"] == "ScaledObject" and op["path"] == "/spec/maxReplicaCount":
                assert op["value"] <= frames_partitions

    pod = worker["spec"]["template"]["spec"]
    container = pod["containers"][0]
    settings = build_settings("worker", pod_env(container, docs))
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] == settings.kafka.frames_topic
    assert trigger["metadata"]["consumerGroup"] == settings.worker.group_id
    # The broker address comes from the ConfigMap (kustomization.yaml's replacement).
    assert "bootstrapServers" not in trigger["metadata"]
    replacement = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["replacements"]
    assert replacement == [
        {
            "source": {
                "kind": "ConfigMap",
                "name": "emostream",
                "fieldPath": "data.EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS",
            },
            "targets": [
                {
                    "select": {"kind": "ScaledObject", "name": "emostream-worker"},
                    "fieldPaths": ["spec.triggers.[type=kafka].metadata.bootstrapServers"],
                    "options": {"create": True},
                }
            ],
        }
    ]
    # KEDA reads lag as the worker will: a partition without a committed offset from its start.
    from emostream.kafka import clients as kafka

    monkeypatch.setattr(kafka, "AIOKafkaConsumer", lambda *topics, **kwargs: kwargs)
    policy = kafka.make_consumer(KafkaOptions(), [], "g", "t")["auto_offset_reset"]
    assert trigger["metadata"]["offsetResetPolicy"] == policy == "earliest"
    # KEDA's cooldownPeriod acts only on scaling to zero; scale-in is the HPA's behaviour.
    assert "cooldownPeriod" not in scaled or scaled["minReplicaCount"] == 0
    scale_down = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["policies"] and all(
        p["type"] == "Pods" and p["value"] == 1 for p in scale_down["policies"]
    )
    assert scale_down.get("selectPolicy", "Max") != "Disabled"
    assert scale_down["stabilizationWindowSeconds"] >= scaled["pollingInterval"]
    # The rollout never makes more members than replicas (<= partitions): none is left without a
    # partition, unready, holding up the rollout.
    rolling = worker["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxSurge"] == 0 and rolling["maxUnavailable"] == 1
    # Threads follow the CPU request.
    env = pod_env(container, docs)
    cpus = int(container["resources"]["requests"]["cpu"])
    assert settings.model.threads == settings.detector.threads == cpus, env

    # The trigger authenticates as the services do.
    assert trigger["metadata"]["sasl"] == KEDA_SASL[settings.kafka.sasl_mechanism]
    assert trigger["metadata"]["tls"] == "enable"
    assert settings.kafka.security_protocol == "SASL_SSL"
    auth = docs[("TriggerAuthentication", trigger["authenticationRef"]["name"])]
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"username", "password", "ca"}
    for parameter, ref in refs.items():
        secret = docs[("Secret", ref["name"])]["stringData"]
        assert ref["key"] in secret, parameter
    assert docs[("Secret", refs["username"]["name"])]["stringData"][refs["username"]["key"]] == (
        settings.kafka.sasl_username.get_secret_value()
    )
    assert refs["password"]["key"] == "EMOSTREAM_KAFKA__SASL_PASSWORD"
    ca_mount = mounted_secret_file(worker, settings.kafka.ssl_ca_file)
    assert ca_mount == (refs["ca"]["name"], refs["ca"]["key"])
    assert pod["terminationGracePeriodSeconds"] > settings.worker.shutdown_grace_s
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == settings.worker.metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    budgets = {
        d["metadata"]["name"]: d for (kind, _), d in docs.items() if kind == "PodDisruptionBudget"
    }
    for name in ("emostream-worker", "emostream-aggregator"):
        deployment = docs[("Deployment", name)]
        assert budgets[name]["spec"]["selector"] == deployment["spec"]["selector"]


def kustomize(folder: Path) -> list[dict]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def mounted_secret_file(deployment: dict, path: str) -> tuple[str, str]:
    """(Secret name, key) that a Deployment's or Job's first container sees at ``path``."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in pod["containers"][0].get("volumeMounts", []):
        folder = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(folder) and "secret" in volumes[mount["name"]]:
            return volumes[mount["name"]]["secret"]["secretName"], path.removeprefix(folder)
    raise AssertionError(f"{deployment['metadata']['name']}: nothing mounted at {path}")


needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed"
)


@needs_kubectl
@pytest.mark.parametrize("target", ["base", "overlays/gpu"])
def test_kustomize_output_validates(target):
    docs = kustomize(K8S / target)
    for doc in docs:
        validate_resource(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "emostream"
    worker = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "emostream-worker"
    )
    resources = worker["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert ("nvidia.com/gpu" in resources["limits"]) == (target == "overlays/gpu")
    env = {
        e["name"]: e.get("value")
        for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env.get("EMOSTREAM_WORKER__PATH") == ("device" if target == "overlays/gpu" else None)
    cpus = str(int(resources["requests"]["cpu"]))
    assert env["EMOSTREAM_MODEL__THREADS"] == env["EMOSTREAM_DETECTOR__THREADS"] == cpus
    scaled = next(d for d in docs if d["kind"] == "ScaledObject")
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["authenticationRef"]["name"] in {
        d["metadata"]["name"] for d in docs if d["kind"] == "TriggerAuthentication"
    }
    assert trigger["metadata"]["offsetResetPolicy"] == "earliest"
    assert trigger["metadata"]["lagThreshold"] == ("1000" if target == "overlays/gpu" else "100")


@needs_kubectl
def test_broker_address_is_set_in_one_place(tmp_path):
    """Changing the ConfigMap's address changes it in every rendered object, base and overlay."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    configmap = copy / "base" / "configmap.yaml"
    old = yaml.safe_load(configmap.read_text())["data"]["EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS"]
    new = "broker-0.kafka.example:9093,broker-1.kafka.example:9093"
    configmap.write_text(configmap.read_text().replace(old, new))
    for target in ("base", "overlays/gpu"):
        docs = kustomize(copy / target)
        rendered = yaml.safe_dump_all(docs)
        assert old not in rendered, target
        scaled = next(d for d in docs if d["kind"] == "ScaledObject")
        assert scaled["spec"]["triggers"][0]["metadata"]["bootstrapServers"] == new, target
        config = next(d for d in docs if d["kind"] == "ConfigMap")
        assert config["data"]["EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS"] == new
        # The topics Job reads it from the ConfigMap, not from a copy.
        job = next(d for d in docs if d["kind"] == "Job")
        assert (
            "$EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS"
            in job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        )


# ---- settings the services build from these files ---------------------------------------------


def test_compose_env_builds_each_services_settings(build_settings):
    services = load_compose()["services"]
    topics = compose_topics()
    for name, service in services.items():
        command = (service.get("command") or [None])[0]
        if command not in SETTINGS_BY_COMMAND:
            continue
        s = build_settings(command, compose_env(service))
        assert s.kafka.bootstrap_servers == "kafka:9092", name
        assert s.kafka.create_topics is False, name
        wanted = {
            s.kafka.frames_topic,
            s.kafka.events_topic,
            s.kafka.dlq_topic,
            s.kafka.changes_topic,
            s.kafka.alerts_topic,
        }
        assert wanted | {"emostream.cameras"} == set(topics), name
        assert getattr(s, "fleet", None) is None or s.fleet.cameras_topic in topics, name
        assert s.kafka.max_message_bytes <= int(
            topics[s.kafka.frames_topic]["configs"]["max.message.bytes"]
        ), name
        if command == "aggregator":
            assert s.redis.url.get_secret_value() == "redis://redis:6379/0"
            assert s.api.host == "0.0.0.0" and s.api.port == 8000
            keys = [k.get_secret_value() for k in s.api.read_keys]
            assert keys == json.loads(DOT_ENV["EMOSTREAM_API__READ_KEYS"])
            check_bind(
                s.api.host, [*s.api.read_keys, *s.api.admin_keys], "the API", API_KEYS_SETTING
            )
            assert s.alerts.webhook_secret is not None
            assert str(s.api.port) in " ".join(service["healthcheck"]["test"])
        if command == "worker":
            assert f":{s.worker.metrics_port}/" in " ".join(service["healthcheck"]["test"])
            assert s.worker.metrics_host == "0.0.0.0", name  # the default is loopback
            assert s.model.device == ("cuda" if "gpu" in service.get("profiles", []) else "cpu")
            on_gpu = "gpu" in service.get("profiles", [])
            assert s.worker.path == ("device" if on_gpu else "auto"), name
            grace_s = int(service["stop_grace_period"].removesuffix("s"))
            assert grace_s > s.worker.shutdown_grace_s
        if command == "ingest" and name == "ingest-fleet":  # issue 35: cameras as data
            assert s.ingest.source == "fleet" and service["command"] == ["ingest"]
            assert s.redis.url.get_secret_value() == "redis://redis:6379/0"
            assert f":{s.ingest.metrics_port}/livez" in " ".join(service["healthcheck"]["test"])
        elif command == "ingest":
            assert s.ingest.source == "sample" and s.ingest.loop is True
            assert f":{s.ingest.metrics_port}/livez" in " ".join(service["healthcheck"]["test"])
            assert s.ingest.metrics_host == "0.0.0.0", name
        # Real secrets from .env: the services start, though they reach beyond loopback.
        assert s.reached_hosts() and refuse_placeholder_secrets(s, s.reached_hosts()) == []


def test_k8s_env_builds_each_services_settings(build_settings):
    docs = base_docs()
    configmap = docs[("ConfigMap", "emostream")]["data"]
    seen = set()
    for (kind, name), doc in docs.items():
        if kind != "Deployment":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        command = container["args"][0]
        seen.add(command)
        s = build_settings(command, pod_env(container, docs))
        # secret.yaml is a template: its `change-me` values stop every service (Kafka is remote).
        with pytest.raises(ConfigError, match="EMOSTREAM_KAFKA__SASL_PASSWORD"):
            refuse_placeholder_secrets(s, s.reached_hosts())
        # Every service reaches Kafka as configured: credentials from the Secret, the CA mounted.
        assert s.kafka.security_protocol == configmap["EMOSTREAM_KAFKA__SECURITY_PROTOCOL"], name
        assert (
            s.kafka.sasl_password.get_secret_value()
            == docs[("Secret", "emostream-kafka")]["stringData"]["EMOSTREAM_KAFKA__SASL_PASSWORD"]
        ), name
        secret, key = mounted_secret_file(doc, s.kafka.ssl_ca_file)
        assert key in docs[("Secret", secret)]["stringData"], name
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert annotations.get("prometheus.io/scrape") == "true", name  # ingest included
        assert (
            int(annotations["prometheus.io/port"])
            == ports["http" if command == "aggregator" else "metrics"]
        ), name
        assert s.kafka.bootstrap_servers == configmap["EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS"], name
        assert s.kafka.frames_topic == "emostream.frames" and s.kafka.create_topics is False
        assert {
            s.kafka.frames_topic,
            s.kafka.events_topic,
            s.kafka.dlq_topic,
            s.kafka.changes_topic,
            s.kafka.alerts_topic,
            "emostream.cameras",
        } == set(k8s_topics())
        if command == "ingest":  # one fleet Deployment, N replicas (issue 35)
            assert s.ingest.source == "fleet" and doc["spec"]["replicas"] >= 2
            assert "strategy" not in doc["spec"]  # a rolling update only moves cameras
            assert s.fleet.cameras_topic in k8s_topics()
            assert s.redis.url.get_secret_value().startswith("redis://")
        if command == "aggregator":
            assert s.redis.url.get_secret_value().startswith("redis://")
            assert s.api.host == "0.0.0.0"
            assert [k.get_secret_value() for k in s.api.read_keys] == PLACEHOLDER_KEYS
            check_bind(
                s.api.host, [*s.api.read_keys, *s.api.admin_keys], "the API", API_KEYS_SETTING
            )
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["http"] == s.api.port
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        else:  # only the aggregator gets the API's Secret
            assert {"secretRef": {"name": "emostream"}} not in container.get("envFrom", []), name
            # Probes reach the pod IP: the metrics server must not keep its loopback default.
            section = s.worker if command == "worker" else s.ingest
            assert section.metrics_host == "0.0.0.0", name
    assert seen == set(SETTINGS_BY_COMMAND)


def test_compose_requires_real_secrets(build_settings):
    """No `change-me` defaults: compose names a missing secret; services refuse a placeholder."""
    services = load_compose()["services"]
    where = {
        "EMOSTREAM_API__READ_KEYS": "aggregator",
        "EMOSTREAM_API__ADMIN_KEYS": "aggregator",
        "EMOSTREAM_ALERTS__WEBHOOK_SECRET": "aggregator",
        "EMOSTREAM_INGEST__API_KEYS": "ingest",
    }
    assert set(where) == set(DOT_ENV)
    for name, service in where.items():
        assert re.search(rf"\${{{name}:\?[^}}]*\.env[^}}]*}}", COMPOSE.read_text()), name
        for value in (None, ""):  # unset, or set empty: compose stops and names it
            env = {k: v for k, v in DOT_ENV.items() if k != name}
            if value is not None:
                env[name] = value
            with pytest.raises(AssertionError, match=name):
                compose_env(services[service], env)
    example = ENV_EXAMPLE.read_text()
    assert "openssl rand -hex 32" in example
    set_lines = [line for line in example.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in set_lines if "change-me" in line]
    # .env.example copied unchanged sets none of them: `docker compose up` names each.
    assert not [line for line in set_lines if line.split("=")[0].strip() in DOT_ENV]
    # Placeholders put in .env instead: beyond loopback (0.0.0.0, kafka:9092) the services refuse.
    placeholders = {
        k: v.replace(v.strip('["]'), f"change-me-{i:08}")
        for i, (k, v) in enumerate(DOT_ENV.items())
    }
    for command in ("aggregator", "ingest"):
        s = build_settings(command, compose_env(services[command], placeholders))
        with pytest.raises(ConfigError, match="change-me") as caught:
            refuse_placeholder_secrets(s, s.reached_hosts())
        assert {n for n, svc in where.items() if svc == command} <= set(
            re.findall(r"EMOSTREAM_\w+", str(caught.value))
        )


def test_ingest_http_port_is_exposed_with_its_own_keys(build_settings):
    """Frames over HTTP: compose publishes the port, Kubernetes has a Service; write keys apart."""
    services = load_compose()["services"]
    ingest = build_settings("ingest", compose_env(services["ingest"]))
    assert ingest.ingest.http.port == 8001 and ingest.ingest.http.host == "0.0.0.0"
    published = [interpolate(p) for p in services["ingest"]["ports"]]
    assert f"127.0.0.1:8001:{ingest.ingest.http.port}" in published
    keys = json.loads(DOT_ENV["EMOSTREAM_INGEST__API_KEYS"])
    assert [k.get_secret_value() for k in ingest.ingest.api_keys] == keys
    aggregator = build_settings("aggregator", compose_env(services["aggregator"]))
    assert "http://127.0.0.1:8001" in aggregator.api.browser_origins  # the capture page reads
    assert "EMOSTREAM_INGEST__API_KEYS" not in services["aggregator"]["environment"]

    docs = base_docs()
    deployment = docs[("Deployment", "emostream-ingest")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    s = build_settings("ingest", pod_env(container, docs))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == s.ingest.http.port == 8001 and s.ingest.http.host == "0.0.0.0"
    service = docs[("Service", "emostream-ingest")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    # The write keys come from their own Secret; the API's Secret stays with the aggregator.
    ref = next(e for e in container["env"] if e["name"] == "EMOSTREAM_INGEST__API_KEYS")
    assert ref["valueFrom"]["secretKeyRef"]["name"] == "emostream-ingest"
    assert set(docs[("Secret", "emostream-ingest")]["stringData"]) == {"EMOSTREAM_INGEST__API_KEYS"}
    assert (
        s.ingest.api_keys
        and "EMOSTREAM_INGEST__API_KEYS" not in (docs[("Secret", "emostream")]["stringData"])
    )
    assert not [k for k in pod_env(container, docs) if k.startswith("EMOSTREAM_API__")]
    with pytest.raises(ConfigError, match="EMOSTREAM_INGEST__API_KEYS"):  # a template value
        refuse_placeholder_secrets(s, s.reached_hosts())


# ---- Dockerfile -----------------------------------------------------------------------------


def dockerfile_stages() -> tuple[dict[str, str], list[dict]]:
    """Global ARG defaults and the stages: {"name", "from", "args", "instructions"}."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    global_args: dict[str, str] = {}
    stages: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append({"name": name, "from": words[0], "args": {}, "instructions": []})
        elif op == "ARG":
            key, _, default = rest.partition("=")
            target = stages[-1]["args"] if stages else global_args
            target[key] = default or global_args.get(key, "")
        else:
            stages[-1]["instructions"].append((op, rest))
    return global_args, stages


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text
    )


def test_dockerfile_targets_user_and_entrypoint():
    global_args, stages = dockerfile_stages()
    names = [s["name"] for s in stages]
    assert {"cpu", "cuda"} <= set(names)
    assert names[-1] == "cpu"  # `docker build .` without --target gives the CPU image
    for stage in stages:
        image = expand(stage["from"], global_args)
        if image in names or image == "scratch":
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"unpinned base image {image}"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", global_args["PYTHON_IMAGE"])
    assert re.fullmatch(
        r"nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu[\d.]+", global_args["CUDA_IMAGE"]
    )
    for target in ("cpu", "cuda"):
        stage = stages[names.index(target)]
        args = global_args | stage["args"]
        ops = dict(stage["instructions"])  # the last of each kind
        user = expand(ops["USER"], args).split(":")[0]
        assert user not in ("", "root", "0"), target
        assert json.loads(ops["ENTRYPOINT"]) == ["emostream"]
    compose_targets = {
        s["build"]["target"]
        for s in load_compose()["services"].values()
        if isinstance(s.get("build"), dict)
    }
    assert compose_targets <= set(names)


def test_dockerfile_installs_only_the_project_and_pinned_torch():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("torch=="))
    global_args, stages = dockerfile_stages()
    installs = []
    for stage in stages:
        args = global_args | stage["args"]
        for op, rest in stage["instructions"]:
            if op == "COPY" and not rest.startswith("--from="):
                # Only project files enter the build context's stages.
                sources = shlex.split(rest)[:-1]
                assert set(sources) <= {"pyproject.toml", "README.md", "shared", "services"}, rest
            if op != "RUN" or "pip install" not in rest:
                continue
            for command in rest.split("&&"):
                words = shlex.split(expand(command, args))
                if words[:2] != ["pip", "install"]:
                    assert "pip" not in words, command
                    continue
                targets, index = [], None
                it = iter(words[2:])
                for word in it:
                    if word == "--index-url":
                        index = next(it)
                    elif word.startswith("-"):
                        pytest.fail(f"unexpected pip option {word}: {command}")
                    else:
                        targets.append(word)
                installs.append((stage["name"], targets, index))
    assert installs, "no pip install found"
    for stage, targets, index in installs:
        for target in targets:
            assert re.fullmatch(r"\.(\[[\w,-]+\])?", target) or target == torch_pin, (stage, target)
        if targets == [torch_pin]:
            assert re.fullmatch(r"https://download\.pytorch\.org/whl/(cpu|cu\d+)", index), index
            assert index.endswith("/cpu") == stage.startswith("cpu"), (stage, index)
        else:
            assert index is None, (stage, index)  # the project itself: from PyPI, as declared
    for target in ("cpu-build", "cuda-build"):
        assert [t for s, t, _ in installs if s == target] == [[torch_pin], ["."]], target


def test_metrics_servers_bind_loopback_unless_deployed():
    """Outside containers the worker's and ingest's /metrics, /livez, /readyz stay on loopback,
    like the API; compose and Kubernetes set 0.0.0.0 (checked above)."""
    from emostream.config import IngestOptions, WorkerOptions

    assert WorkerOptions().metrics_host == "127.0.0.1"
    assert IngestOptions().metrics_host == "127.0.0.1"


# ---- Kafka security: compose's example and the topics Job ----------------------------------


def test_compose_security_example_builds_valid_settings(build_settings):
    """The commented TLS + SASL block in x-kafka-env, uncommented, is a valid configuration."""
    lines = COMPOSE.read_text().splitlines()
    start = lines.index("x-kafka-env: &kafka-env")
    block = {}
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        match = re.fullmatch(r"\s*#\s*(EMOSTREAM_KAFKA__\w+): (.+)", line)
        if match:
            block[match.group(1)] = match.group(2)
    assert set(block) >= {
        "EMOSTREAM_KAFKA__SECURITY_PROTOCOL",
        "EMOSTREAM_KAFKA__SASL_MECHANISM",
        "EMOSTREAM_KAFKA__SASL_USERNAME",
        "EMOSTREAM_KAFKA__SASL_PASSWORD",
        "EMOSTREAM_KAFKA__SSL_CA_FILE",
    }
    env = compose_env(load_compose()["services"]["worker"]) | {
        k: interpolate(
            v, {"EMOSTREAM_KAFKA__SASL_USERNAME": "svc", "EMOSTREAM_KAFKA__SASL_PASSWORD": "pw"}
        )
        for k, v in block.items()
    }
    s = build_settings("worker", env)
    assert s.kafka.security_protocol == "SASL_SSL" and s.kafka.ssl_check_hostname
    mount = re.search(r"#\s*volumes: \[\"\./kafka-certs:([^:]+):ro\"\]", COMPOSE.read_text())
    assert mount and s.kafka.ssl_ca_file.startswith(mount.group(1) + "/")


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
@pytest.mark.parametrize(
    "mechanism,module",
    [
        ("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"),
        ("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule"),
    ],
)
def test_topics_job_connects_as_the_services(mechanism, module, tmp_path, build_settings):
    """The Job's script, run with kafka-topics.sh stubbed: the client properties it writes."""
    docs = base_docs()
    job = docs[("Job", "emostream-topics")]
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["args"][0].replace("/tmp/", f"{tmp_path}/")
    stub = tmp_path / "kafka-topics.sh"
    stub.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/calls"\n')
    stub.chmod(0o755)
    script = script.replace("/opt/kafka/bin/kafka-topics.sh", str(stub))
    env = pod_env(container, docs) | {
        "EMOSTREAM_KAFKA__SASL_MECHANISM": mechanism,
        "EMOSTREAM_KAFKA__SASL_PASSWORD": 'pa"ss\\word',
    }
    build_settings("worker", env)  # the same variables are a valid service configuration
    subprocess.run(
        [container["command"][0], *container["command"][1:], script],
        env={"PATH": os.environ["PATH"]} | env,
        check=True,
        timeout=30,
    )
    props = (tmp_path / "client.properties").read_text().splitlines()
    assert "security.protocol=SASL_SSL" in props
    assert f"sasl.mechanism={mechanism}" in props
    # Properties unescape \\ to \, then JAAS unescapes \" and \\: the password arrives intact.
    assert (
        f'sasl.jaas.config={module} required username="change-me-user" '
        'password="pa\\\\"ss\\\\\\\\word";'
    ) in props
    assert "ssl.truststore.type=PEM" in props
    assert f"ssl.truststore.location={env['EMOSTREAM_KAFKA__SSL_CA_FILE']}" in props
    creates = [c for c in (tmp_path / "calls").read_text().splitlines() if "--create" in c]
    assert len(creates) == len(k8s_topics())
    assert all(f"--command-config {tmp_path}/client.properties" in c for c in creates)


def test_no_kafka_setting_without_effect():
    """Where an operator creates the topics, the services' topic-creation settings do nothing."""
    configmap = base_docs()[("ConfigMap", "emostream")]["data"]
    compose = load_compose()["x-kafka-env"]
    for env in (configmap, compose):
        assert env["EMOSTREAM_KAFKA__CREATE_TOPICS"] == "false"
        assert "EMOSTREAM_KAFKA__TOPIC_PARTITIONS" not in env
        assert "EMOSTREAM_KAFKA__REPLICATION_FACTOR" not in env
