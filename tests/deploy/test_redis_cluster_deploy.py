"""Redis Cluster in the deploy files: the Kubernetes overlay and the compose profile point the
aggregators at a cluster node, form the cluster they point at, and validate offline."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.deploy.test_deploy import K8S, kustomize, load_compose, needs_kubectl, validate_resource

OVERLAY = K8S / "overlays" / "redis-cluster"


@needs_kubectl
def test_k8s_overlay_points_the_aggregators_at_a_node_of_the_cluster_it_forms():
    docs = kustomize(OVERLAY)
    for doc in docs:
        validate_resource(doc)
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    assert all(
        d["metadata"].get("namespace") == "emostream" for d in docs if d["kind"] != "Namespace"
    )
    url = urlsplit(by[("Secret", "emostream")]["stringData"]["EMOSTREAM_REDIS__URL"])
    nodes = by[("StatefulSet", "emostream-redis")]
    service = by[("Service", "emostream-redis")]
    assert nodes["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"  # a DNS name per pod
    assert url.hostname == f"{nodes['metadata']['name']}-0.{service['metadata']['name']}"
    assert (
        url.port == 6379
        and url.password == by[("Secret", "emostream-redis")]["stringData"]["password"]
    )
    args = nodes["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--cluster-enabled") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "volatile-lru"  # rules never evicted
    script = by[("Job", "emostream-redis-cluster-create")]["spec"]["template"]["spec"]
    script = script["containers"][0]["args"][0]
    assert "--cluster-replicas 1" in script and nodes["spec"]["replicas"] == 6  # 3 masters + 3
    assert "for i in 0 1 2 3 4 5" in script  # every pod joins
    replicas = by[("Deployment", "emostream-aggregator")]["spec"]["replicas"]
    assert 3 <= replicas <= 12  # scaled out, within the events partitions


def test_compose_profile_forms_a_cluster_of_six_nodes():
    services = load_compose()["services"]
    nodes = [f"redis-node-{i}" for i in range(1, 7)]
    for name in nodes:
        node = services[name]
        assert node["profiles"] == ["redis-cluster"]
        assert node["command"][node["command"].index("--cluster-enabled") + 1] == "yes"
        assert "healthcheck" in node
    init = services["redis-cluster-init"]
    assert init["profiles"] == ["redis-cluster"]
    assert set(init["depends_on"]) == set(nodes)
    assert "--cluster-replicas 1" in init["command"][0]
    assert "profiles" not in services["redis"]  # the default deployment keeps its one node
