"""deploy/: the docker-compose file, the Kubernetes manifests and the images' Dockerfiles, checked here
because no container registry or cluster is reachable from this machine (docs/DEPLOYMENT.md).

Structure (every resource and container complete, probes and resource requests on each long-running
process, every reference resolvable), agreement with the code (every environment variable is a real
setting, every command is the one scripts/stack.py runs, every probe path a real route, every COPY a
real path) and no secret but the marked development placeholders. When kubectl is on the machine the
kustomization is rendered too; when kubernetes-validate is installed, every resource is schema-checked.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fund.settings import CoreSettings
from gateway.settings import Settings as GatewaySettings
from stack import Stack

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
OUR_IMAGES = ("anju-app", "anju-rasa")
SECRET_WORDS = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


# --- what the code knows ----------------------------------------------------------------------
def env_names_in(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return set(re.findall(r"os\.environ\.get\(\"([A-Z0-9_]+)\"", source)) | set(re.findall(r"\$\{([A-Z0-9_]+)\}", source))


GATEWAY_NAMES = {name.upper() for name in GatewaySettings.model_fields}
CORE_NAMES = {name.upper() for name in CoreSettings.model_fields}
ACTION_NAMES = env_names_in(ROOT / "actions" / "settings.py")
RASA_NAMES = env_names_in(ROOT / "bot" / "endpoints.yml") | env_names_in(ROOT / "bot" / "gateway_channel.py")
# The thread limits of a Rasa process (scripts/stack.py ONE_THREAD), read by OpenMP and TensorFlow.
THREAD_NAMES = set(re.findall(r'"((?:OMP|TF)_[A-Z_]+)": "', (ROOT / "scripts" / "stack.py").read_text(encoding="utf-8")))
LOG_NAMES = set(re.findall(r"\b(LOG_FORMAT)\b", (ROOT / "bot" / "observability.py").read_text(encoding="utf-8")))
# What each process reads; a name outside its role's set is a typo or a renamed setting.
ROLE_NAMES = {
    "gateway": GATEWAY_NAMES, "media": GATEWAY_NAMES, "core": CORE_NAMES,
    "actions": ACTION_NAMES | {"ANJU_ENV"}, "rasa": RASA_NAMES | THREAD_NAMES | {"ANJU_ENV"},
    "speech": {"ANJU_ENV"},
}


def used_by_command(command: list[str]) -> set[str]:
    """Variables the container's own command line expands ($X, $$X in compose, $(X) in Kubernetes):
    rasa's --auth-token, the speech secret written to its --secret-file."""
    return set(re.findall(r"\$\$?\(?\{?([A-Z][A-Z0-9_]*)", " ".join(command)))
COMMON = {"ANJU_ENV", "LOG_FORMAT", "CORE_URL"}   # anju-common / x-common-env: every process may get them


def dev_defaults() -> dict[str, str]:
    """The development placeholders the settings classes themselves carry (dev-…)."""
    found = {}
    for model in (GatewaySettings, CoreSettings):
        for name, field in model.model_fields.items():
            value = field.default
            value = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            if isinstance(value, str) and value.startswith("dev-"):
                found[name.upper()] = value
    source = (ROOT / "actions" / "settings.py").read_text(encoding="utf-8")
    for name, value in re.findall(r"DEV_([A-Z_]+) = \"(dev-[^\"]+)\"", source):
        found[name] = value
    return found


@pytest.fixture(scope="module")
def stack_argv(tmp_path_factory) -> dict[str, list[str]]:
    tmp = tmp_path_factory.mktemp("stack")
    (tmp / "model.tar.gz").write_bytes(b"")
    stack = Stack(tmp / "data", tmp / "model.tar.gz", tmp / "app", tmp / "rasa", media_nodes=1)
    return {name: svc.argv for name, svc in stack.services.items()}


def role_of(name: str) -> str:
    return re.sub(r"-\d+$", "", name)


def command_matches_stack(role: str, command: list[str], stack_argv: dict[str, list[str]]) -> None:
    """Same program and module as scripts/stack.py, and every option it passes (values aside)."""
    tokens = shlex.split(command[-1]) if command[0] == "sh" else list(command)
    if "exec" in tokens:
        tokens = tokens[tokens.index("exec") + 1:]
    reference = stack_argv["media-0" if role == "media" else role]
    if role == "rasa":
        assert tokens[:3] == ["rasa", "run", "--enable-api"], tokens
    else:
        module = reference[reference.index("-m") + 1]
        assert tokens[:3] == ["python", "-m", module], f"{role}: {tokens[:3]} is not python -m {module}"
    options = lambda argv: {a.split("=", 1)[0] for a in argv if a.startswith("-") and a != "-m"}  # noqa: E731
    missing = options(reference[1:]) - options(tokens) - {"--host"}   # speech and nodes bind by default
    assert not missing, f"{role}: options scripts/stack.py passes are missing: {missing}"
    if role == "rasa":
        for flag, value in (("--endpoints", "bot/endpoints.yml"), ("--credentials", "bot/credentials.yml")):
            assert tokens[tokens.index(flag) + 1] == value, f"rasa: {flag} must be {value}, as scripts/stack.py passes it"
    if role in ("gateway", "core", "rasa") or (role == "actions"):
        host = tokens[tokens.index("--host") + 1] if "--host" in tokens else tokens[tokens.index("-i") + 1] \
            if "-i" in tokens else None
        assert host in (None, "0.0.0.0"), f"{role} must listen beyond loopback in a container, got {host}"


# --- loading ------------------------------------------------------------------------------------
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def k8s_docs() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in k8s_docs() if d["kind"] == kind}


def pod_specs() -> list[tuple[str, dict]]:
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for _, d in k8s_docs() if d["kind"] in WORKLOADS]


def our_containers() -> list[tuple[str, dict]]:
    return [(c["name"], c) for _, spec in pod_specs() for c in spec["containers"] if c["image"] in OUR_IMAGES]


def container_env(container: dict) -> dict[str, object]:
    """Every variable a container gets: env entries and the keys of the ConfigMaps it takes whole."""
    config_maps = by_kind("ConfigMap")
    names: dict[str, object] = {}
    for ref in container.get("envFrom", []):
        assert "configMapRef" in ref, "envFrom only from ConfigMaps: secrets go one by one (secretKeyRef)"
        names.update(config_maps[ref["configMapRef"]["name"]]["data"])
    for entry in container.get("env", []):
        names[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return names


# --- docker-compose -----------------------------------------------------------------------------
def test_every_compose_service_is_complete_and_watched():
    services = compose()["services"]
    for role in ("redis", "postgres", "core", "actions", "rasa", "gateway", "speech", "media", "coturn", "front"):
        assert any(role_of(name) == role for name in services), f"no {role} service"
    assert sum(role_of(n) == "gateway" for n in services) >= 2 and sum(role_of(n) == "media" for n in services) >= 2
    for name, svc in services.items():
        assert svc.get("image"), f"{name}: no image"
        assert svc.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        assert svc["deploy"]["resources"]["reservations"], f"{name}: no resource reservation"
        assert svc.get("restart") == "unless-stopped", f"{name}: not restarted after a crash"
        for dependency in svc.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        mode = svc.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in services
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert source.startswith("./build/") or (DEPLOY / source).exists(), f"{name}: {source} missing"
            else:
                assert source in compose()["volumes"], f"{name}: volume {source} not declared"
    for role in ("rasa", "actions"):
        assert str(services[role]["deploy"]["replicas"]).startswith("${"), f"{role}: replicas not configurable"


def test_compose_commands_are_the_ones_scripts_stack_runs(stack_argv):
    for name, svc in compose()["services"].items():
        if svc["image"].split(":")[0] in OUR_IMAGES:
            command_matches_stack(role_of(name), svc["command"], stack_argv)
    redis = compose()["services"]["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes" and redis[redis.index("--appendfsync") + 1] == "always"
    assert "--appendonly" in stack_argv["redis"]


def test_compose_environment_names_are_real_settings():
    services = compose()["services"]
    for name, svc in services.items():
        if svc["image"].split(":")[0] not in OUR_IMAGES:
            continue
        role = role_of(name)
        unknown = set(svc["environment"]) - ROLE_NAMES[role] - COMMON - used_by_command(svc["command"])
        assert not unknown, f"{name}: {unknown} are not settings that {role} reads"
    for name in [n for n in services if role_of(n) == "media"]:
        assert services[name]["environment"]["VIDEO_NODE_HOST"] == services[name]["hostname"] == name
    gateway = services["gateway-1"]["environment"]
    assert gateway["VIDEO_MEDIA_NODES"] == "true" and gateway["SPEECH_URL"].startswith("ws://127.0.0.1:")
    assert services["core"]["environment"]["CORE_DATABASE_URL"].startswith("postgresql://")
    rasa = services["rasa"]["environment"]
    assert RASA_NAMES <= set(rasa), f"rasa lacks {RASA_NAMES - set(rasa)} (bot/endpoints.yml would get a literal ${{…}})"


def test_the_front_sends_every_gateway_replica_and_hashes_by_session():
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text(encoding="utf-8")
    upstream = set(re.findall(r"server (gateway-\d+):8000", conf))
    gateways = {n for n in compose()["services"] if role_of(n) == "gateway"}
    assert upstream == gateways, f"nginx sends to {sorted(upstream)}, compose runs {sorted(gateways)}"
    assert re.search(r"hash \$\w+ consistent;", conf) and "$cookie_anju_session" in conf and "$http_authorization" in conf
    from gateway.sessions import COOKIE
    assert f"$cookie_{COOKIE}" in conf
    front_ip = compose()["services"]["front"]["networks"]["default"]["ipv4_address"]
    assert front_ip in compose()["services"]["gateway-1"]["environment"]["TRUSTED_PROXIES"]


def test_compose_secrets_are_interpolated_with_dev_placeholders_only():
    text = COMPOSE.read_text(encoding="utf-8")
    known = dev_defaults()
    for var, default in INTERPOLATION.findall(text):
        if SECRET_WORDS.search(var) and default:
            assert default.startswith("dev-"), f"${{{var}}} defaults to a value that is not a dev- placeholder"
            if var in known:
                assert default == known[var], f"{var}: {default} differs from the settings' own {known[var]}"
    for name, svc in compose()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_WORDS.search(key) and key not in ("REDIS_URL",) and str(value):
                match = INTERPOLATION.fullmatch(str(value))
                assert match and match.group(1) == key, f"{name}: {key} must be ${{{key}:-dev-…}}, not {value!r}"


def interpolated_compose(overrides: dict[str, str] | None = None) -> dict:
    """The compose file as docker compose reads it with an empty .env (every ${X:-default} at its default)."""
    overrides = overrides or {}
    text = INTERPOLATION.sub(lambda m: overrides.get(m.group(1), m.group(2) or ""), COMPOSE.read_text(encoding="utf-8"))
    return yaml.safe_load(text.replace("$$", "$"))


def settings_from(model, env: dict, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return model()


@pytest.mark.parametrize("service", ["gateway-1", "media-2", "core"])
def test_compose_values_parse_as_settings_and_production_refuses_the_placeholders(service, monkeypatch):
    model = CoreSettings if service == "core" else GatewaySettings
    env = interpolated_compose()["services"][service]["environment"]
    settings = settings_from(model, env, monkeypatch)
    assert settings.anju_env == "development"
    if model is GatewaySettings:
        assert settings.video_ice_servers and all(u.startswith("turn:") for u in settings.video_ice_servers)
        assert settings.trusted_proxies == ["10.77.0.10"] and settings.video_media_nodes
    else:
        assert settings.core_database_url.startswith("postgresql://") and settings.core_auto_seed
    production = interpolated_compose({"ANJU_ENV": "production"})["services"][service]["environment"]
    with pytest.raises(ValueError, match="production"):
        settings_from(model, production, monkeypatch)


def test_k8s_values_parse_as_settings(monkeypatch):
    secrets = {k: v for s in by_kind("Secret").values() for k, v in s["stringData"].items()}
    for name, container in our_containers():
        if name not in ("gateway", "media", "core"):
            continue
        env = {k: (secrets[v["secretKeyRef"]["key"]] if isinstance(v, dict) and "secretKeyRef" in v else
                   "10.1.2.3" if isinstance(v, dict) else v) for k, v in container_env(container).items()}
        model = CoreSettings if name == "core" else GatewaySettings
        with pytest.raises(ValueError, match="production"):   # ANJU_ENV=production refuses the dev- placeholders
            settings_from(model, env, monkeypatch)
        settings = settings_from(model, {**env, "ANJU_ENV": "development"}, monkeypatch)
        assert settings.redis_url.startswith("redis://")


# --- Kubernetes ---------------------------------------------------------------------------------
def test_every_k8s_resource_is_complete():
    docs = k8s_docs()
    assert docs
    for path, doc in docs:
        for field in ("apiVersion", "kind", "metadata"):
            assert doc.get(field), f"{path}: {doc.get('kind')} without {field}"
        assert doc["metadata"].get("name"), f"{path}: a {doc['kind']} without a name"
        if doc["kind"] not in ("ConfigMap", "Secret", "Namespace"):
            assert doc.get("spec"), f"{path}: {doc['kind']} {doc['metadata']['name']} without spec"
    for name, spec in pod_specs():
        workload = next(d for _, d in docs if d["kind"] in WORKLOADS and d["metadata"]["name"] == name)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            assert c.get("image"), f"{where}: no image"
            requests = c.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= set(requests), f"{where}: no cpu/memory request"
            assert c.get("readinessProbe") and c.get("livenessProbe"), f"{where}: needs readiness and liveness probes"
            ports = {p["containerPort"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                action = c.get(probe, {}).get("httpGet") or c.get(probe, {}).get("tcpSocket")
                if action:
                    assert action["port"] in ports, f"{where}: {probe} on a port the container does not open"
        if workload["kind"] == "StatefulSet":
            assert workload["spec"]["serviceName"] in by_kind("Service")


def test_services_and_autoscalers_point_at_real_workloads():
    workloads = {d["metadata"]["name"]: d for _, d in k8s_docs() if d["kind"] in WORKLOADS}
    for name, service in by_kind("Service").items():
        selector = service["spec"]["selector"]
        targets = [w for w in workloads.values() if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert targets, f"service {name} selects no pod"
        ports = {p["containerPort"] for w in targets for c in w["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"service {name}: targetPort {port['targetPort']} is not opened"
    autoscaled = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind("HorizontalPodAutoscaler").values()}
    assert {"gateway", "rasa", "actions"} <= set(autoscaled)
    for name, hpa in autoscaled.items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert workloads[name]["kind"] == ref["kind"] and hpa["spec"]["minReplicas"] >= 2
    for backend in (p["backend"]["service"] for rule in by_kind("Ingress")["anju"]["spec"]["rules"]
                    for p in rule["http"]["paths"]):
        assert backend["name"] in by_kind("Service")


def test_k8s_commands_are_the_ones_scripts_stack_runs(stack_argv):
    roles = set()
    for name, container in our_containers():
        command_matches_stack(name, container["args"], stack_argv)
        roles.add(name)
    assert roles == {"gateway", "speech", "core", "actions", "rasa", "media"}
    redis = next(c for _, s in pod_specs() for c in s["containers"] if c["name"] == "redis")
    assert "--appendfsync always" in " ".join(redis["command"])


def test_k8s_environment_names_are_real_settings_and_references_resolve():
    config_maps, secrets = by_kind("ConfigMap"), by_kind("Secret")
    for name, container in our_containers():
        env = container_env(container)
        unknown = set(env) - ROLE_NAMES[name] - COMMON - used_by_command(container["args"])
        assert not unknown, f"{name}: {unknown} are not settings that {name} reads"
        for entry in container.get("env", []):
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                assert ref["key"] == entry["name"] or ref["name"] != "anju-secrets", entry
                assert ref.get("optional") or ref["key"] in secrets[ref["name"]]["stringData"], entry
            elif SECRET_WORDS.search(entry["name"]):
                pytest.fail(f"{name}: {entry['name']} must come from a Secret, not a literal")
        for ref in container.get("envFrom", []):
            assert ref["configMapRef"]["name"] in config_maps
    env = {name: container_env(c) for name, c in our_containers()}
    assert RASA_NAMES <= set(env["rasa"]), f"rasa lacks {RASA_NAMES - set(env['rasa'])}"
    assert env["media"]["VIDEO_NODE_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["core"]["CORE_DATABASE_URL"]["secretKeyRef"]["name"] == "anju-database"
    assert env["gateway"]["SPEECH_URL"].startswith("ws://127.0.0.1:") and env["gateway"]["VIDEO_MEDIA_NODES"] == "true"
    for name, cm in config_maps.items():
        if name.startswith("anju-"):
            assert not [k for k in cm["data"] if SECRET_WORDS.search(k)], f"ConfigMap {name} holds a secret"


def test_k8s_secrets_hold_only_marked_development_placeholders():
    known = dev_defaults()
    for name, secret in by_kind("Secret").items():
        assert secret["metadata"]["annotations"]["anju/development-placeholders"] == "true"
        assert "data" not in secret, f"{name}: base64 data hides what is committed; use stringData"
        for key, value in secret["stringData"].items():
            assert "dev-" in value, f"{name}.{key} is not a dev- placeholder"
            if "://" not in value:
                assert value.startswith("dev-")
            if key in known:
                assert value == known[key], f"{key}: {value} differs from the settings' own {known[key]}"
    assert by_kind("ConfigMap")["anju-common"]["data"]["ANJU_ENV"] == "production", \
        "the cluster runs as production, which refuses the dev- placeholders"


def test_probe_paths_are_real_routes():
    routes = {
        "gateway": (ROOT / "gateway/channels/health.py", "/healthz"), "core": (ROOT / "fund/api.py", "/healthz"),
        "media": (ROOT / "gateway/handoff/node.py", "/healthz"), "actions": (ROOT / "actions/server.py", "/health"),
    }
    for name, container in our_containers():
        for probe in ("readinessProbe", "livenessProbe"):
            path = (container[probe].get("httpGet") or {}).get("path")
            if path and name in routes:
                source, expected = routes[name]
                assert path == expected and f'"{expected}"' in source.read_text(encoding="utf-8") or \
                    expected in source.read_text(encoding="utf-8")
    for _, svc in compose()["services"].items():
        probe = " ".join(svc["healthcheck"]["test"])
        for source, path in routes.values():
            if f":{8000 if path == '/healthz' else 5055}{path}'" in probe:
                assert path in source.read_text(encoding="utf-8")


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert {i["name"] for i in kustomization["images"]} == set(OUR_IMAGES)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: kustomize rendering not checked")
def test_kustomize_renders_every_resource():
    done = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert len(rendered) == len(k8s_docs())
    assert all(d["metadata"].get("namespace") == "anju" for d in rendered if d["kind"] != "Namespace")


@pytest.mark.skipif(importlib.util.find_spec("kubernetes_validate") is None,
                    reason="kubernetes-validate not installed: no schema check of the manifests")
def test_every_k8s_resource_matches_the_kubernetes_schema():
    import kubernetes_validate
    for path, doc in k8s_docs():
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


# --- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dockerfile, base, lock", [
    ("Dockerfile.app", "python:3.11-slim-bookworm", "pip install --no-cache-dir --no-deps -r requirements/app.lock"),
    ("Dockerfile.rasa", "python:3.10-slim", "-c requirements/rasa.lock -r requirements/rasa.in"),
])
def test_dockerfiles_copy_real_paths_and_install_the_locks(dockerfile, base, lock):
    text = (DEPLOY / dockerfile).read_text(encoding="utf-8")
    assert text.splitlines()[[l.startswith("FROM") for l in text.splitlines()].index(True)] == f"FROM {base}"
    assert lock in text
    ignore = (DEPLOY / f"{dockerfile}.dockerignore").read_text(encoding="utf-8").split()
    for line in text.splitlines():
        if not line.startswith("COPY"):
            continue
        *sources, _dest = line.split()[1:]
        for source in sources:
            if not source.startswith("deploy/build/"):   # copied in before the build (docs/DEPLOYMENT.md)
                assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"
            kept = [rule[1:] for rule in ignore if rule.startswith("!")]
            assert any(source == k or source.startswith(k.rstrip("/") + "/") for k in kept), \
                f"{dockerfile}.dockerignore keeps {source} out of the build context"
    assert "USER anju" in text


def test_no_secret_shaped_value_in_deploy():
    """Nothing in deploy/ looks like a real key: long random-looking strings are refused."""
    for path in DEPLOY.rglob("*"):
        if path.is_file() and "build" not in path.relative_to(DEPLOY).parts:
            text = path.read_text(encoding="utf-8")
            for candidate in re.findall(r"[A-Za-z0-9+/_=-]{32,}", text):
                letters, digits = sum(c.isalpha() for c in candidate), sum(c.isdigit() for c in candidate)
                assert not (letters and digits >= 6 and "-" not in candidate[:8]), \
                    f"{path.name}: {candidate[:12]}… looks like a secret"
