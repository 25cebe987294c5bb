"""Deployment files checked against the code they start: no Docker and no cluster needed.

Every container command must be a real ``gmv`` command, every environment variable a field of
``Settings`` (with a value it accepts), every probe must hit the port the service listens on,
and the autoscalers must stop at the topics' partition count. Each check is a function that
returns the problems it found; the last tests feed them broken input to show they can fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gmv_cli.main import app
from gmv_cli.runner import SERVICES, WORKERS
from gmv_common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "deploy" / "k8s"
COMPOSE_FILE = ROOT / "deploy" / "compose" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
# Compose services that run the image rather than a third-party one.
THIRD_PARTY_SERVICES = frozenset({"mysql", "kafka"})
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
HEALTH_URL = re.compile(
    r"http://(?:127\.0\.0\.1|localhost):(?P<port>\d+)(?P<path>/\w+)"
)

Document = dict[str, Any]


# Loading


def k8s_documents() -> list[Document]:
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def of_kind(documents: list[Document], kind: str) -> list[Document]:
    return [doc for doc in documents if doc["kind"] == kind]


def by_name(documents: list[Document], kind: str) -> dict[str, Document]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(documents, kind)}


def workload_containers(documents: list[Document]) -> Iterator[tuple[str, Document]]:
    for doc in of_kind(documents, "Deployment") + of_kind(documents, "Job"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            yield doc["metadata"]["name"], container


def compose_file() -> Document:
    loaded: Document = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def gmv_compose_services(compose: Document) -> dict[str, Document]:
    return {
        name: service
        for name, service in compose["services"].items()
        if name not in THIRD_PARTY_SERVICES
    }


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, arguments = stripped.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_stages(text: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(stage name, resolved base image, instructions) per FROM, ARG defaults applied."""
    arguments: dict[str, str] = {}
    stages: list[tuple[str, str, list[tuple[str, str]]]] = []
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            arguments[name] = default
        elif keyword == "FROM":
            image, _, name = rest.partition(" AS ")
            for arg_name, value in arguments.items():
                image = image.replace(f"${{{arg_name}}}", value)
            stages.append((name.strip(), image.strip(), []))
        elif stages:
            stages[-1][2].append((keyword, rest))
    return stages


# Checks (each returns a list of problems)


def command_problems(args: list[str]) -> list[str]:
    """Whether ``gmv ARGS`` names a real command with real options."""
    if not args:
        return ["empty command"]
    result = CliRunner().invoke(app, [*args, "--help"])
    if result.exit_code != 0:
        return [
            f"`gmv {shlex.join(args)}` is not a gmv command: {result.output.strip()}"
        ]
    problems = []
    if args[0] == "serve":
        service = args[1] if len(args) > 1 else ""
        if service not in SERVICES:
            problems.append(f"`gmv serve {service}`: not one of {SERVICES}")
        port = port_argument(args)
        if port is not None and not 0 < port < 65536:
            problems.append(f"`gmv {shlex.join(args)}`: --port is not a port")
    return problems


def port_argument(args: list[str]) -> int | None:
    """The ``--port`` value of a ``gmv serve`` command; ``serve``'s default when absent."""
    if args[:1] != ["serve"]:
        return None
    for index, arg in enumerate(args):
        if arg == "--port" and index + 1 < len(args):
            return int(args[index + 1]) if args[index + 1].isdigit() else -1
        if arg.startswith("--port="):
            value = arg.partition("=")[2]
            return int(value) if value.isdigit() else -1
    return 8000


def unknown_settings(names: list[str]) -> list[str]:
    return [
        f"{name} is not a Settings field" for name in names if name not in SETTING_NAMES
    ]


def resolve_compose_value(
    value: object, variables: dict[str, str] | None = None
) -> str | None:
    """The value compose would pass given ``variables``; None when one it needs is unset."""
    text = str(value)
    for match in INTERPOLATION.finditer(text):
        given = (variables or {}).get(match["name"])
        if given:
            text = text.replace(match[0], given)
        elif match["op"] in (":-", "-"):
            text = text.replace(match[0], match["arg"])
        else:
            return None
    return text


def settings_value_problems(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Whether ``Settings`` accepts each value exactly as it would arrive in the environment."""
    problems = []
    for name, value in environment.items():
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            try:
                Settings(_env_file=None)  # type: ignore[call-arg]
            except Exception as exc:
                problems.append(f"{name}={value!r} is refused: {exc}")
    return problems


def container_port_problems(owner: str, container: Document) -> list[str]:
    """Probes and the ``--port`` argument must agree with the declared container ports."""
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
    numbers = set(ports.values())
    args = container.get("args", [])
    problems = []
    listening = port_argument(args)
    if listening is not None and listening not in numbers:
        problems.append(
            f"{owner}: --port {listening} is not a container port {numbers}"
        )
    expected_paths = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    for probe_name, path in expected_paths.items():
        probe = container.get(probe_name)
        if probe is None:
            if probe_name != "startupProbe" and listening is not None:
                problems.append(f"{owner}: no {probe_name}")
            continue
        http_get = probe["httpGet"]
        port = ports.get(http_get["port"], http_get["port"])
        if port != listening:
            problems.append(
                f"{owner}: {probe_name} port {http_get['port']} is not --port {listening}"
            )
        if http_get["path"] != path:
            problems.append(f"{owner}: {probe_name} path {http_get['path']} != {path}")
    return problems


def compose_health_problems(name: str, service: Document) -> list[str]:
    command = service.get("command", [])
    listening = port_argument(command)
    if listening is None:
        return []
    health = service.get("healthcheck") or {}
    match = HEALTH_URL.search(" ".join(map(str, health.get("test", []))))
    if match is None:
        return [f"{name}: no HTTP healthcheck"]
    problems = []
    if int(match["port"]) != listening:
        problems.append(
            f"{name}: healthcheck port {match['port']} != --port {listening}"
        )
    if match["path"] not in ("/healthz", "/readyz"):
        problems.append(f"{name}: healthcheck path {match['path']}")
    for mapping in service.get("ports", []):
        target = int(str(mapping).rsplit(":", 1)[-1].split("/")[0])
        if target != listening:
            problems.append(f"{name}: published port {mapping} != --port {listening}")
    return problems


def autoscaler_problems(documents: list[Document], partitions: int) -> list[str]:
    deployments = by_name(documents, "Deployment")
    problems = []
    for hpa in of_kind(documents, "HorizontalPodAutoscaler"):
        name = hpa["metadata"]["name"]
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in deployments:
            problems.append(f"HPA {name}: target {target['name']} does not exist")
        if hpa["spec"]["maxReplicas"] > partitions:
            problems.append(
                f"HPA {name}: maxReplicas {hpa['spec']['maxReplicas']} > "
                f"{partitions} partitions (extra consumers would sit idle)"
            )
        if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
            problems.append(f"HPA {name}: minReplicas above maxReplicas")
    return problems


def partition_count(documents: list[Document]) -> int:
    config = by_name(documents, "ConfigMap")["gmv-config"]["data"]
    return int(config.get("KAFKA_PARTITIONS", Settings().kafka_partitions))


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# Kubernetes


def test_every_kubernetes_manifest_parses_into_named_objects_in_the_gmv_namespace() -> (
    None
):
    documents = k8s_documents()

    assert len(documents) >= 10
    for doc in documents:
        assert doc["apiVersion"]
        assert doc["kind"]
        assert doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "gmv", doc["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    manifests = {
        path.name
        for path in K8S_DIR.glob("*.yaml")
        if path.name != "kustomization.yaml"
    }

    assert set(kustomization["resources"]) == manifests


def test_every_service_has_a_deployment_and_every_worker_an_autoscaler() -> None:
    documents = k8s_documents()
    autoscaled = {
        hpa["spec"]["scaleTargetRef"]["name"]
        for hpa in of_kind(documents, "HorizontalPodAutoscaler")
    }

    assert set(by_name(documents, "Deployment")) == set(SERVICES)
    assert autoscaled == set(WORKERS)


def test_every_kubernetes_container_runs_a_real_gmv_command() -> None:
    problems = []
    for owner, container in workload_containers(k8s_documents()):
        problems += [f"{owner}: {p}" for p in command_problems(container["args"])]

    assert problems == []


def test_every_kubernetes_variable_is_a_setting_with_an_accepted_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents = k8s_documents()
    config = by_name(documents, "ConfigMap")["gmv-config"]["data"]
    secret = by_name(documents, "Secret")["gmv-secrets"]["stringData"]
    inline = [
        variable["name"]
        for _, container in workload_containers(documents)
        for variable in container.get("env", [])
    ]

    assert unknown_settings([*config, *secret, *inline]) == []
    # Secret values are placeholders; the configuration values must parse as they are.
    assert settings_value_problems(config, monkeypatch) == []


def test_containers_load_only_the_config_and_secret_that_exist() -> None:
    documents = k8s_documents()
    names = {
        "configMapRef": set(by_name(documents, "ConfigMap")),
        "secretRef": set(by_name(documents, "Secret")),
    }

    for owner, container in workload_containers(documents):
        for source in container["envFrom"]:
            (kind, reference), *_ = source.items()
            assert reference["name"] in names[kind], owner


def test_probes_use_the_port_each_service_listens_on() -> None:
    problems = []
    for owner, container in workload_containers(k8s_documents()):
        problems += container_port_problems(owner, container)

    assert problems == []


def test_every_container_has_modest_requests_below_its_limits() -> None:
    for owner, container in workload_containers(k8s_documents()):
        resources = container["resources"]

        assert set(resources["requests"]) == {"cpu", "memory"}, owner
        assert set(resources["limits"]) == {"cpu", "memory"}, owner


def test_gateway_service_and_disruption_budget_select_the_gateway_pods() -> None:
    documents = k8s_documents()
    gateway = by_name(documents, "Deployment")["api-gateway"]
    pod_labels = gateway["spec"]["template"]["metadata"]["labels"]
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    port_names = {port["name"] for port in container["ports"]}
    service = by_name(documents, "Service")["api-gateway"]
    budget = by_name(documents, "PodDisruptionBudget")["api-gateway"]

    assert selects(service["spec"]["selector"], pod_labels)
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    assert budget["spec"]["minAvailable"] < gateway["spec"]["replicas"]


def test_autoscalers_target_deployments_and_stop_at_the_partition_count() -> None:
    documents = k8s_documents()

    assert autoscaler_problems(documents, partition_count(documents)) == []


def test_pods_run_as_the_images_non_root_user() -> None:
    uid = dockerfile_user_id()

    for doc in of_kind(k8s_documents(), "Deployment") + of_kind(k8s_documents(), "Job"):
        context = doc["spec"]["template"]["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == uid, doc["metadata"]["name"]


# Compose


def test_compose_runs_every_service_on_the_production_backends() -> None:
    compose = compose_file()
    services = gmv_compose_services(compose)
    serving = {
        service["command"][1]
        for service in services.values()
        if service["command"][0] == "serve"
    }

    assert serving == set(SERVICES)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert compose["services"]["mysql"]["image"].startswith("mysql:8")
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    for service in services.values():
        environment = service["environment"]
        assert environment["BUS_BACKEND"] == "kafka"
        assert environment["ENVIRONMENT"] == "production"
        assert environment["DATABASE_URL"].startswith("mysql+aiomysql://")


def test_every_compose_command_is_a_real_gmv_command() -> None:
    problems = []
    for name, service in gmv_compose_services(compose_file()).items():
        problems += [f"{name}: {p}" for p in command_problems(service["command"])]

    assert problems == []


def test_every_compose_variable_is_a_setting_with_an_accepted_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems = []
    for service in gmv_compose_services(compose_file()).values():
        environment = service["environment"]
        problems += unknown_settings(list(environment))
        resolved = {
            name: value
            for name, raw in environment.items()
            if (value := resolve_compose_value(raw)) is not None
        }
        problems += settings_value_problems(resolved, monkeypatch)

    assert problems == []


def test_compose_environment_passes_the_production_checks_once_secrets_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = dict(
        line.split("=", 1)
        for line in (COMPOSE_FILE.parent / "example.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    required = {name for name, value in example.items() if not value}
    variables = {
        **example,
        "MYSQL_PASSWORD": secrets.token_urlsafe(24),
        "MYSQL_ROOT_PASSWORD": secrets.token_urlsafe(24),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "CRYPTO_KEYS": json.dumps(
            {"1": base64.urlsafe_b64encode(os.urandom(32)).decode()}
        ),
    }

    assert required == {
        "MYSQL_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "SECRET_KEY",
        "CRYPTO_KEYS",
    }
    for name, service in gmv_compose_services(compose_file()).items():
        with monkeypatch.context() as patch:
            for variable, raw in service["environment"].items():
                value = resolve_compose_value(raw, variables)
                assert value is not None, f"{name}: {variable} has no value"
                patch.setenv(variable, value)
            settings = Settings(_env_file=None)  # type: ignore[call-arg]

            settings.check_production()
            assert settings.is_production
            assert settings.bus_backend == "kafka"


def test_compose_healthchecks_use_the_port_each_service_listens_on() -> None:
    problems = []
    for name, service in gmv_compose_services(compose_file()).items():
        problems += compose_health_problems(name, service)

    assert problems == []


def test_compose_services_wait_for_their_dependencies_to_be_ready() -> None:
    compose = compose_file()

    for name, service in gmv_compose_services(compose).items():
        depends_on = service["depends_on"]
        assert depends_on["mysql"]["condition"] == "service_healthy", name
        for dependency in depends_on:
            assert dependency in compose["services"], name
            if dependency != "migrate":
                assert "healthcheck" in compose["services"][dependency], dependency
        if name != "migrate":
            assert depends_on["migrate"]["condition"] == (
                "service_completed_successfully"
            )
            assert depends_on["kafka"]["condition"] == "service_healthy"


# Container image


def dockerfile_user_id() -> int:
    *_, (_, _, runtime) = dockerfile_stages(DOCKERFILE.read_text())
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    return int(users[-1].split(":")[0])


def dockerfile_problems(text: str) -> list[str]:
    stages = dockerfile_stages(text)
    names = [name for name, _, _ in stages]
    problems = []
    if "builder" not in names:
        return ["no stage named builder"]
    _, _, builder = stages[names.index("builder")]
    runtime_name, runtime_image, runtime = stages[-1]
    syncs = [
        rest for keyword, rest in builder if keyword == "RUN" and "uv sync" in rest
    ]
    if not syncs or not all("--frozen" in s and "--no-dev" in s for s in syncs):
        problems.append("the builder must `uv sync --frozen --no-dev`")
    if not any("uv.lock" in rest for keyword, rest in builder if keyword == "COPY"):
        problems.append("the builder does not copy uv.lock")
    if runtime_image != "python:3.11-slim":
        problems.append(f"runtime stage {runtime_name} is based on {runtime_image}")
    for stage_index, (_, _, instructions) in enumerate(stages):
        for keyword, rest in instructions:
            source = re.search(r"--from=(\S+)", rest) if keyword == "COPY" else None
            if source and source[1] in names[stage_index:]:
                problems.append(f"COPY --from={source[1]} names a later stage")
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage runs as root")
    if any("uv " in rest for keyword, rest in runtime if keyword == "RUN"):
        problems.append("the runtime stage runs uv")
    final = dict(runtime)
    if final.get("ENTRYPOINT") != '["gmv"]':
        problems.append(f"ENTRYPOINT is {final.get('ENTRYPOINT')}, not gmv")
    problems += command_problems(yaml.safe_load(final.get("CMD", "[]")))
    health = HEALTH_URL.search(final.get("HEALTHCHECK", ""))
    if health is None or health["path"] != "/healthz":
        problems.append("no HEALTHCHECK on /healthz")
    elif health["port"] != final.get("EXPOSE"):
        problems.append(f"HEALTHCHECK port {health['port']} is not EXPOSE")
    return problems


def test_dockerfile_builds_the_locked_workspace_and_runs_gmv_as_non_root() -> None:
    text = DOCKERFILE.read_text()

    assert dockerfile_problems(text) == []
    assert [name for name, _, _ in dockerfile_stages(text)][-2:] == [
        "builder",
        "runtime",
    ]
    assert dockerfile_user_id() != 0


def test_dockerfile_copies_every_workspace_members_pyproject_for_the_cached_layer() -> (
    None
):
    text = DOCKERFILE.read_text()
    members = sorted(
        path.relative_to(ROOT).as_posix()
        for path in [
            *ROOT.glob("libs/*/pyproject.toml"),
            *ROOT.glob("services/*/pyproject.toml"),
        ]
    )

    for member in members:
        assert f"COPY {member} " in text, member


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    ignored = set(DOCKERIGNORE.read_text().split())

    assert {".git", ".venv", ".local", ".env"} <= ignored


# The checks fail on real mismatches


def test_command_check_rejects_unknown_commands_services_and_options() -> None:
    assert command_problems(["serve", "api-gateway", "--port", "8000"]) == []
    assert command_problems(["db", "upgrade"]) == []

    assert command_problems(["db", "migrate"]) != []
    assert command_problems(["serve", "options-cahce"]) != []
    assert command_problems(["serve", "api-gateway", "--listen", "8000"]) != []


def test_setting_checks_reject_unknown_names_and_unparsable_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert unknown_settings(["KAFKA_BOOTSTRAP_SERVER"]) != []
    assert settings_value_problems({"COOKIE_MAX_AGE": "a week"}, monkeypatch)
    assert settings_value_problems({"BUS_BACKEND": "rabbitmq"}, monkeypatch)
    assert resolve_compose_value("${SECRET_KEY:?set it}") is None
    assert resolve_compose_value("${LEVEL:-INFO}") == "INFO"


def test_port_checks_reject_probes_off_the_listening_port() -> None:
    (_, container), *_ = workload_containers(k8s_documents())
    moved = {**container, "args": ["serve", "api-gateway", "--port", "9000"]}
    compose_service = gmv_compose_services(compose_file())["metadata-sync"]
    moved_service = {
        **compose_service,
        "command": ["serve", "metadata-sync", "--port", "9000"],
    }

    assert container_port_problems("api-gateway", moved) != []
    assert compose_health_problems("metadata-sync", moved_service) != []


def test_autoscaler_check_rejects_more_replicas_than_partitions() -> None:
    documents = k8s_documents()

    assert autoscaler_problems(documents, partitions=4) != []


def test_dockerfile_check_rejects_a_root_runtime_and_an_unlocked_sync() -> None:
    text = DOCKERFILE.read_text()

    assert dockerfile_problems(text.replace("USER 10001:10001", "USER root")) != []
    assert dockerfile_problems(text.replace("--frozen", "")) != []
    assert dockerfile_problems(text.replace('CMD ["serve"', 'CMD ["run"')) != []
