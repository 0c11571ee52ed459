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

from emostream.services.aggregator.auth import check_bind
from emostream.services.config import AggregatorSettings, IngestSettings, WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
KEDA_SCHEMA = ROOT / "tests" / "schemas" / "keda_scaledobject_v1alpha1.json"
# The newest Kubernetes the installed kubernetes-validate has schemas for.
K8S_VERSION = kubernetes_validate.latest_version()
SETTINGS_BY_COMMAND = {"ingest": IngestSettings, "worker": WorkerSettings,
                       "aggregator": AggregatorSettings}
PLACEHOLDER_KEYS = ["change-me-read"]


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
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op in (":-", "-"):
            return default
        raise AssertionError(f"${{{name}}} has no default: compose fails without a .env")

    return _VAR.sub(sub, value)


def compose_variables() -> set[str]:
    return {m.group(1) for m in _VAR.finditer(COMPOSE.read_text()) if m.group(1)}


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    out = {}
    for key, value in env.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out[key] = interpolate(text)
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
            "partitions": int(words[words.index("--partitions") + 1]), "configs": configs}
    return specs


def compose_topics() -> dict[str, dict]:
    init = load_compose()["services"]["kafka-init"]
    return topic_specs("\n".join(init["command"]).replace("$$", "$"))


def k8s_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def kustomizations() -> list[Path]:
    return [p for p in k8s_files() if p.name == "kustomization.yaml"]


def patch_files() -> set[Path]:
    out = set()
    for kfile in kustomizations():
        for patch in yaml.safe_load(kfile.read_text()).get("patches", []):
            if "path" in patch:
                out.add((kfile.parent / patch["path"]).resolve())
    return out


def manifest_docs() -> list[tuple[Path, dict]]:
    """Complete resources (not kustomization files, not patches) of every file under deploy/k8s."""
    patches = patch_files()
    return [(p, d) for p in k8s_files()
            if p.name != "kustomization.yaml" and p.resolve() not in patches for d in load_docs(p)]


def base_docs() -> dict[tuple[str, str], dict]:
    base = K8S / "base"
    listed = yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    docs = [d for name in listed for d in load_docs(base / name)]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def k8s_topics() -> dict[str, dict]:
    job = base_docs()[("Job", "emostream-topics")]
    return topic_specs("\n".join(job["spec"]["template"]["spec"]["containers"][0]["args"]))


def keda_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(KEDA_SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_resource(doc: dict) -> None:
    if doc["kind"] == "ScaledObject":
        errors = list(keda_validator().iter_errors(doc))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
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
            "service_completed_successfully"), name
    assert services["aggregator"]["depends_on"]["redis"]["condition"] == "service_healthy"
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["target"] == "cuda"
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "profiles" not in services["worker"]


def test_compose_topics():
    topics = compose_topics()
    assert {t: s["partitions"] for t, s in topics.items()} == {
        "emostream.frames": 12, "emostream.events": 12, "emostream.changes": 12,
        "emostream.dlq": 3, "emostream.alerts": 3}
    frames = topics["emostream.frames"]["configs"]
    assert int(frames["retention.ms"]) <= 15 * 60 * 1000
    assert int(frames["segment.ms"]) <= int(frames["retention.ms"])  # else retention never bites
    assert k8s_topics() == topics  # compose and Kubernetes create the same topics


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


@pytest.mark.parametrize("path,doc", manifest_docs(),
                         ids=lambda v: v.name if isinstance(v, Path) else
                         f"{v['kind']}/{v['metadata']['name']}")
def test_manifest_validates(path, doc):
    validate_resource(doc)


def test_patches_target_base_resources():
    base = base_docs()
    for path in patch_files():
        for doc in load_docs(path):
            assert (doc["kind"], doc["metadata"]["name"]) in base, (path, doc["kind"])


def test_worker_scaling_and_shutdown(build_settings):
    docs = base_docs()
    scaled = docs[("ScaledObject", "emostream-worker")]["spec"]
    worker = docs[("Deployment", "emostream-worker")]
    assert scaled["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]  # KEDA owns the count; apply must not reset it
    frames_partitions = min(compose_topics()["emostream.frames"]["partitions"],
                            k8s_topics()["emostream.frames"]["partitions"])
    assert scaled["maxReplicaCount"] <= frames_partitions
    for path in patch_files():
        for doc in load_docs(path):
            if doc["kind"] == "ScaledObject":
                assert doc["spec"].get("maxReplicaCount", 0) <= frames_partitions
                assert doc["spec"]["triggers"][0]["metadata"]["topic"] == "emostream.frames"

    pod = worker["spec"]["template"]["spec"]
    container = pod["containers"][0]
    settings = build_settings("worker", pod_env(container, docs))
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["topic"] == settings.kafka.frames_topic
    assert trigger["metadata"]["consumerGroup"] == settings.worker.group_id
    assert trigger["metadata"]["bootstrapServers"] == settings.kafka.bootstrap_servers
    assert pod["terminationGracePeriodSeconds"] > settings.worker.shutdown_grace_s
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == settings.worker.metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"

    budgets = {d["metadata"]["name"]: d for (kind, _), d in docs.items()
               if kind == "PodDisruptionBudget"}
    for name in ("emostream-worker", "emostream-aggregator"):
        deployment = docs[("Deployment", name)]
        assert budgets[name]["spec"]["selector"] == deployment["spec"]["selector"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("target", ["base", "overlays/gpu"])
def test_kustomize_output_validates(target):
    out = subprocess.run(["kubectl", "kustomize", str(K8S / target)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        validate_resource(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "emostream"
    worker = next(d for d in docs if d["kind"] == "Deployment"
                  and d["metadata"]["name"] == "emostream-worker")
    resources = worker["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert ("nvidia.com/gpu" in resources["limits"]) == (target == "overlays/gpu")


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
        wanted = {s.kafka.frames_topic, s.kafka.events_topic, s.kafka.dlq_topic,
                  s.kafka.changes_topic, s.kafka.alerts_topic}
        assert wanted == set(topics), name
        assert s.kafka.max_message_bytes <= int(
            topics[s.kafka.frames_topic]["configs"]["max.message.bytes"]), name
        if command == "aggregator":
            assert s.redis.url.get_secret_value() == "redis://redis:6379/0"
            assert s.api.host == "0.0.0.0" and s.api.port == 8000
            assert [k.get_secret_value() for k in s.api.read_keys] == PLACEHOLDER_KEYS
            check_bind(s.api.host, s.api.read_keys, s.api.admin_keys)
            assert s.alerts.webhook_secret is not None
            assert str(s.api.port) in " ".join(service["healthcheck"]["test"])
        if command == "worker":
            assert f":{s.worker.metrics_port}/" in " ".join(service["healthcheck"]["test"])
            assert s.worker.metrics_host == "0.0.0.0", name  # the default is loopback
            assert s.model.device == ("cuda" if "gpu" in service.get("profiles", []) else "cpu")
            grace_s = int(service["stop_grace_period"].removesuffix("s"))
            assert grace_s > s.worker.shutdown_grace_s
        if command == "ingest":
            assert s.ingest.source == "sample" and s.ingest.loop is True
            assert f":{s.ingest.metrics_port}/livez" in " ".join(service["healthcheck"]["test"])
            assert s.ingest.metrics_host == "0.0.0.0", name


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
        assert s.kafka.bootstrap_servers == configmap["EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS"], name
        assert s.kafka.frames_topic == "emostream.frames" and s.kafka.create_topics is False
        assert {s.kafka.frames_topic, s.kafka.events_topic, s.kafka.dlq_topic,
                s.kafka.changes_topic, s.kafka.alerts_topic} == set(k8s_topics())
        if command == "aggregator":
            assert s.redis.url.get_secret_value().startswith("redis://")
            assert s.api.host == "0.0.0.0"
            assert [k.get_secret_value() for k in s.api.read_keys] == PLACEHOLDER_KEYS
            check_bind(s.api.host, s.api.read_keys, s.api.admin_keys)
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports["http"] == s.api.port
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        else:  # only the aggregator gets the Secret
            assert all("secretRef" not in ref for ref in container.get("envFrom", [])), name
            # Probes reach the pod IP: the metrics server must not keep its loopback default.
            section = s.worker if command == "worker" else s.ingest
            assert section.metrics_host == "0.0.0.0", name
    assert seen == set(SETTINGS_BY_COMMAND)


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
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)),
                  text)


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
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu[\d.]+",
                        global_args["CUDA_IMAGE"])
    for target in ("cpu", "cuda"):
        stage = stages[names.index(target)]
        args = global_args | stage["args"]
        ops = dict(stage["instructions"])  # the last of each kind
        user = expand(ops["USER"], args).split(":")[0]
        assert user not in ("", "root", "0"), target
        assert json.loads(ops["ENTRYPOINT"]) == ["emostream"]
    compose_targets = {s["build"]["target"] for s in load_compose()["services"].values()
                       if isinstance(s.get("build"), dict)}
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
    from emostream.services.config import IngestOptions, WorkerOptions

    assert WorkerOptions().metrics_host == "127.0.0.1"
    assert IngestOptions().metrics_host == "127.0.0.1"
