"""deploy/k8s/, scale mode's Kubernetes manifests, checked for what a cluster would refuse
and for what would only show once deployed: every file valid against Kubernetes' own
schemas (kubernetes-validate, strict, from .venv-tools, whose jsonschema Rasa 3.6 cannot
share), and every process started as the code expects it. The gateway's environment, as
Kubernetes would build it from the ConfigMap and the Secret, passes `Settings.check()`;
Rasa reads its endpoints.yml with its own reader, and its readiness script, run against a
stand-in on loopback, wants the token and a loaded model; RASA_URL names each Rasa pod; the
Secret the docs tell you to create holds every key the pods need; no secret is in the
repository.
"""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from rasa.core.utils import AvailableEndpoints

from bot.settings import ROOT, Settings
from tests.support.stack import SERVING_ENV

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VALIDATE = ROOT / ".venv-tools" / "bin" / "kubernetes-validate"
# The oldest Kubernetes the manifests are checked against (and a schema the pinned
# kubernetes-validate ships): a field newer than this fails the check.
KUBERNETES_VERSION = "1.29.0"
SECRET = "harbor-lane-secrets"
SIZING = ROOT / "docs" / "sizing.md"
WORKLOADS = ("Deployment", "StatefulSet")
# Kubernetes' $(VAR) in env values, command and args; $$ writes a literal $.
REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
BYTES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def manifest_files() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return [K8S / name for name in kustomization["resources"]]


def documents() -> list[dict[str, Any]]:
    found = []
    for path in manifest_files():
        found += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return found


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def workloads() -> dict[str, dict[str, Any]]:
    return {name: doc for kind in WORKLOADS for name, doc in objects(kind).items()}


def container(workload: str) -> dict[str, Any]:
    (only,) = workloads()[workload]["spec"]["template"]["spec"]["containers"]
    return only


def secret_value(key: str) -> str:
    """What a secret holds in these tests: URL-safe, as docs/sizing.md asks, and recognisable."""
    return f"{key.lower().replace('_', '-')}-value"


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion: a reference to a variable not (yet) defined is left as it is."""
    return REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def environment(spec: dict[str, Any], *, optional_secrets: bool = True) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env in order,
    each value expanded against what came before it; optional secrets set or left out."""
    config_maps = {name: doc.get("data", {}) for name, doc in objects("ConfigMap").items()}
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        assert set(source) <= {"configMapRef", "prefix"}, f"only ConfigMaps come in whole: {source}"
        data = config_maps[source["configMapRef"]["name"]]
        env.update({source.get("prefix", "") + key: value for key, value in data.items()})
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(item["value"], env)
            continue
        reference = item["valueFrom"]["secretKeyRef"]
        if optional_secrets or not reference.get("optional", False):
            env[item["name"]] = secret_value(reference["key"])
    return env


def unresolved(text: str) -> list[str]:
    return [f"$({name})" for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", text)]


def bytes_of(quantity: str) -> int:
    for suffix, factor in BYTES.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


def secret_references() -> list[dict[str, Any]]:
    return [
        item["valueFrom"]["secretKeyRef"]
        for workload in workloads()
        for item in container(workload).get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    ]


def documented_secret_keys() -> tuple[set[str], set[str]]:
    """The keys docs/sizing.md's `kubectl create secret` command sets, and every key it names."""
    blocks = re.findall(r"```sh\n(.*?)```", SIZING.read_text(encoding="utf-8"), flags=re.DOTALL)
    (command,) = [block for block in blocks if f"kubectl create secret generic {SECRET}" in block]
    keys = set(re.findall(r"--from-literal=([A-Z_]+)=", command))
    named = {key for block in blocks for key in re.findall(r"--from-literal=([A-Z_]+)=", block)}
    return keys, named


def test_every_manifest_passes_kubernetes_schemas_strictly() -> None:
    if not KUBERNETES_VALIDATE.exists():
        pytest.fail(f"{KUBERNETES_VALIDATE} is missing: run `make tools` (make test builds it)")
    files = [str(path) for path in manifest_files()]
    run = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--kubernetes-version", KUBERNETES_VERSION, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    # An unknown kind or apiVersion is only a warning ("Couldn't find schema"): here, a failure.
    assert not [line for line in output.splitlines() if not line.startswith("INFO")], output
    assert output.count(" passed for resource ") == len(documents()), output


def test_the_kustomization_applies_every_manifest_and_names_the_image() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    on_disk = sorted(path.name for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == on_disk
    images = {image["name"] for image in kustomization["images"]}
    for workload in workloads():
        assert container(workload)["image"].split(":")[0] in images, workload


def test_every_process_runs_twice_with_probes_requests_and_a_memory_limit() -> None:
    assert set(workloads()) == {"gateway", "rasa", "actions"}
    for name, workload in workloads().items():
        assert workload["spec"].get("replicas", 1) >= 2, name
        spec = container(name)
        ports = {port["name"] for port in spec["ports"]} | {port["containerPort"] for port in spec["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in spec, f"{name} has no {probe}"
            http = spec[probe].get("httpGet")
            assert http is None or http["port"] in ports, f"{name}'s {probe} asks a port it does not open"
        requests, limits = spec["resources"]["requests"], spec["resources"]["limits"]
        assert {"cpu", "memory"} <= requests.keys(), name
        assert bytes_of(limits["memory"]) >= bytes_of(requests["memory"]), name


class StandInRasa(http.server.BaseHTTPRequestHandler):
    """GET /status as Rasa answers it: 401 without the token, 409 before a model is loaded."""

    token = "a token/with=signs"
    model_file: str | None = "models/current.tar.gz"
    loaded = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if parse_qs(url.query).get("token") != [self.token]:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"model_file": self.model_file}).encode()
        self.send_response(200 if self.loaded else 409)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in_rasa() -> Iterator[tuple[int, type[StandInRasa]]]:
    handler = type("Handler", (StandInRasa,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def test_rasa_is_ready_only_with_a_model_and_the_right_token(
    stand_in_rasa: tuple[int, type[StandInRasa]],
) -> None:
    port, rasa = stand_in_rasa
    command = container("rasa")["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "-c"]
    script = command[2].replace("127.0.0.1:5005", f"127.0.0.1:{port}")
    assert script != command[2], "the probe no longer asks Rasa on 127.0.0.1:5005"

    def probe(token: str) -> int:
        env = {"RASA_TOKEN": token, "PATH": ""}
        return subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, timeout=30
        ).returncode

    assert probe(rasa.token) == 0
    assert probe("another token") != 0
    rasa.model_file = None
    assert probe(rasa.token) != 0
    rasa.model_file, rasa.loaded = "models/current.tar.gz", False
    assert probe(rasa.token) != 0


def test_no_gateway_probe_asks_health_which_fails_whenever_rasa_does() -> None:
    spec = container("gateway")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["httpGet"]["path"] != "/health", probe


def test_no_secret_is_in_the_repository_and_every_reference_names_the_one_secret() -> None:
    deploy = ROOT / "deploy"
    for path in [*deploy.rglob("*.yaml"), *deploy.rglob("*.yml")]:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            assert not (doc and doc.get("kind") == "Secret"), f"{path} commits a Secret"
    references = secret_references()
    assert references and {reference["name"] for reference in references} == {SECRET}


def test_the_documented_secret_command_creates_every_key_the_pods_need() -> None:
    required = {ref["key"] for ref in secret_references() if not ref.get("optional", False)}
    every = {ref["key"] for ref in secret_references()}
    created, named = documented_secret_keys()
    assert required <= created, f"docs/sizing.md's command leaves out {sorted(required - created)}"
    assert named == every, f"docs/sizing.md names {sorted(named - every)}, leaves out {sorted(every - named)}"


def test_every_reference_to_an_environment_variable_resolves() -> None:
    for name in workloads():
        spec = container(name)
        env = environment(spec)
        for value in [*env.values(), *(expand(arg, env) for arg in spec.get("args", []))]:
            assert not unresolved(value), f"{name}: {value} (an undefined $(VAR) stays as it is)"
        assert SERVING_ENV.items() <= env.items(), f"{name} lacks the Procfile's thread settings"


@pytest.mark.parametrize("optional_secrets", [True, False], ids=["every secret", "required secrets only"])
def test_the_gateway_starts_with_its_environment_in_scale_mode(optional_secrets: bool) -> None:
    settings_map = objects("ConfigMap")["harbor-lane-settings"]["data"]
    spec = container("gateway")
    settings = Settings.from_env(environment(spec, optional_secrets=optional_secrets))
    settings.check()  # with TELEGRAM_TOKEN set, webhook mode needs its URL and secret token
    database = urlsplit(settings.database_url)
    assert database.scheme == "postgresql" and database.hostname == settings_map["DATABASE_HOST"]
    assert database.password == secret_value("DATABASE_PASSWORD")
    assert settings.redis_url and urlsplit(settings.redis_url).hostname == settings_map["REDIS_HOST"]
    assert settings.secret_key == secret_value("HELPDESK_SECRET_KEY")  # the same in every gateway
    assert settings.rasa_token == secret_value("RASA_TOKEN")
    assert settings.port in [port["containerPort"] for port in spec["ports"]]
    assert (settings.telegram_token is not None) is optional_secrets


def test_rasa_url_names_each_rasa_server_by_its_stable_name() -> None:
    rasa = objects("StatefulSet")["rasa"]
    service = objects("Service")[rasa["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None", "each pod's DNS name needs a headless Service"
    spec = container("rasa")
    port = spec["args"][spec["args"].index("--port") + 1]
    assert [str(p["containerPort"]) for p in spec["ports"]] == [port]
    assert [str(p["port"]) for p in service["spec"]["ports"]] == [port]
    urls = Settings.from_env(environment(container("gateway"))).rasa_urls
    name, headless = rasa["metadata"]["name"], service["metadata"]["name"]
    assert urls == tuple(f"http://{name}-{i}.{headless}:{port}" for i in range(rasa["spec"]["replicas"]))


def test_rasa_reads_scale_modes_endpoints_with_its_own_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = container("rasa")
    env = environment(spec)
    path = PurePosixPath(spec["args"][spec["args"].index("--endpoints") + 1])
    (mount,) = [m for m in spec["volumeMounts"] if PurePosixPath(m["mountPath"]) == path.parent]
    volumes = objects("StatefulSet")["rasa"]["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == mount["name"]]
    text = objects("ConfigMap")[volume["configMap"]["name"]]["data"][path.name]
    endpoints_file = tmp_path / path.name
    endpoints_file.write_text(text, encoding="utf-8")
    for name in re.findall(r"\$\{(\w+)\}", text):
        assert name in env, f"endpoints.yml reads ${{{name}}}, which the Rasa container lacks"
        monkeypatch.setenv(name, env[name])

    endpoints = AvailableEndpoints.read_endpoints(str(endpoints_file))

    tracker_store, lock_store = endpoints.tracker_store, endpoints.lock_store
    assert tracker_store is not None and lock_store is not None
    assert (tracker_store.type, tracker_store.kwargs["dialect"]) == ("SQL", "postgresql")
    assert tracker_store.url == env["DATABASE_HOST"]
    assert tracker_store.kwargs["db"] == env["RASA_DATABASE"]
    assert tracker_store.kwargs["password"] == secret_value("DATABASE_PASSWORD")
    assert (lock_store.type, lock_store.url) == ("redis", env["REDIS_HOST"])
    assert endpoints.action is not None
    action = urlsplit(endpoints.action.url)
    actions_service = objects("Service")["actions"]
    assert (action.hostname, action.port) == ("actions", actions_service["spec"]["ports"][0]["port"])
    assert endpoints.action.url == env["ACTION_SERVER_URL"] + "/webhook"


def test_every_service_and_disruption_budget_reaches_pods_that_serve_its_ports() -> None:
    pods = {name: w["spec"]["template"]["metadata"]["labels"] for name, w in workloads().items()}
    for name, service in objects("Service").items():
        selector = service["spec"]["selector"]
        (target,) = [w for w, labels in pods.items() if selector.items() <= labels.items()]
        ports = container(target)["ports"]
        served = {p["name"] for p in ports} | {p["containerPort"] for p in ports}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in served, f"Service {name} sends to a port {target} does not open"
    for name, budget in objects("PodDisruptionBudget").items():
        selector = budget["spec"]["selector"]["matchLabels"]
        assert [w for w, labels in pods.items() if selector.items() <= labels.items()], name


def test_the_ingress_keeps_socketio_polling_on_one_gateway_and_passes_websockets() -> None:
    (ingress,) = objects("Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "nginx"  # the annotations are ingress-nginx's
    assert annotations.get("nginx.ingress.kubernetes.io/affinity") == "cookie"
    assert annotations.get("nginx.ingress.kubernetes.io/session-cookie-name")
    # Longer than nginx's 60 s default, which closes a websocket whose ping is late.
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations.get(f"nginx.ingress.kubernetes.io/{timeout}", 60)) > 60, timeout
    gateway_ports = {p["name"] for p in objects("Service")["gateway"]["spec"]["ports"]}
    routes = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
        if path["pathType"] == "Prefix" and "/socket.io/".startswith(path["path"])
    ]
    assert routes and all(r["name"] == "gateway" and r["port"]["name"] in gateway_ports for r in routes)
