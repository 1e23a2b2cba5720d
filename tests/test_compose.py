"""The compose file's structure and .env.example against the settings the code reads."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from service.core.settings import Settings
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "web", "worker", "beat")
# Variables in .env.example that only docker-compose.yml reads (the service does not).
COMPOSE_ONLY = {"SITE_ADDRESS"}
# name:1.2.3, name:v1.2, name:1.2.3-alpine, optionally @sha256:...; never a bare major or latest.
PINNED_IMAGE = re.compile(r"[\w./-]+:v?\d+\.\d+(\.\d+)?(-[\w.]+)?(@sha256:[0-9a-f]{64})?")
# ${NAME} and ${NAME:-default}, as compose fills them in from .env and the shell.
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")
SETTING_CALL = re.compile(
    r'(?:_get|_boolean|_positive_number|_optional_file|_optional_http_url)\(env, "([A-Z_]+)"'
    r'|env\.get\("([A-Z_]+)"\)'
)


def load_services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def services() -> dict:
    return load_services()


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def interpolate(value: str, env: dict[str, str]) -> str:
    """A value of the compose file as compose reads it with `env` as its .env."""
    return VARIABLE.sub(lambda m: env.get(m[1]) or m[2] or "", value)


def published_hosts(service: dict) -> list[str]:
    """The host address each published port binds to ("" for every address)."""
    hosts = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            hosts.append(port.get("host_ip", ""))
            continue
        spec = str(port).split("/")[0]
        if spec.startswith("["):
            hosts.append(spec[1 : spec.index("]")])
        else:
            parts = spec.split(":")
            hosts.append(parts[0] if len(parts) == 3 else "")
    return hosts


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else cmd


def test_every_service_has_a_healthcheck(services):
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"] != ["NONE"], f"{name} disables its healthcheck"


def test_beats_stand_by_for_each_other(services):
    """Beats run as a service of their own, more than one: the one holding the scheduler lock
    (PostgreSQL's, worker/scheduler.py) sends the passes, so losing one loses none."""
    beats = [name for name, svc in services.items() if {"beat", "-B", "--beat"} & set(command(svc))]
    assert beats == ["beat"]
    assert command(services["beat"])[:4] == ["celery", "-A", "worker", "beat"]
    assert services["beat"]["deploy"]["replicas"] >= 2
    database = interpolate(str(services["beat"]["environment"]["DATABASE_URL"]), env_example())
    assert database.startswith("postgresql://"), "the scheduler lock is PostgreSQL's"


def test_app_services_share_one_image(services):
    images = {services[name].get("image") for name in APP_SERVICES}
    builds = {repr(services[name].get("build")) for name in APP_SERVICES}
    assert len(images) == 1 and None not in images
    assert len(builds) == 1 and repr(None) not in builds


def test_migrate_is_a_one_shot_upgrade(services):
    migrate = services["migrate"]
    assert command(migrate) == ["leadmagnet", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_app_waits_for_migration_and_redis(services, name):
    depends = services[name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_every_dependency_has_a_condition(services):
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert isinstance(rule, dict) and rule.get("condition"), f"{name} -> {target}"


def settings_read() -> set[str]:
    """The environment variables service/core/settings.py reads, found in its source."""
    source = (ROOT / "service" / "core" / "settings.py").read_text()
    read = {a or b for a, b in SETTING_CALL.findall(source)}
    assert "SECRET_KEY" in read and "INSTANCE_PATH" in read  # the pattern still finds them
    return read


def test_env_example_names_exactly_the_settings():
    assert set(env_example()) == settings_read() | COMPOSE_ONLY
    used = {m[1] for m in VARIABLE.finditer(compose_text())}
    assert used >= COMPOSE_ONLY, "a compose-only variable of .env.example is not used"


def test_only_the_proxy_is_reachable_from_outside(services):
    for name, service in services.items():
        exposed = [host for host in published_hosts(service) if not loopback(host)]
        if name != "proxy":
            assert not exposed, f"{name} publishes a port beyond this machine"
    ports = {str(p) for p in services["proxy"]["ports"]}
    assert {"80:80", "443:443", "443:443/udp"} <= ports
    assert not services["web"].get("ports") and "8000" in map(str, services["web"]["expose"])


def test_pulled_images_are_pinned_to_a_version(services):
    for name, service in services.items():
        if service.get("build"):
            assert service["pull_policy"] == "build", f"{name} might be pulled, not built"
            continue
        image = service["image"]
        assert PINNED_IMAGE.fullmatch(image), f"{name}: {image} is not pinned to a version"


def test_the_proxy_runs_the_repositorys_caddyfile(services):
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:2.")
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert (ROOT / "Caddyfile").is_file()
    # Certificates outlive the container: a new one for every start would hit ACME rate limits.
    assert {v.split(":")[1] for v in proxy["volumes"] if not v.startswith(".")} >= {"/data"}
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"


@pytest.mark.parametrize("dotenv", ["defaults", ".env.example"])
def test_app_services_trust_the_proxy_and_nothing_more(services, dotenv):
    env = env_example() if dotenv == ".env.example" else {}
    for name in APP_SERVICES:
        value = str(services[name]["environment"]["TRUSTED_PROXIES"])
        assert interpolate(value, env) == "1", name


def test_env_example_values_are_valid():
    example = env_example()
    assert example["SECRET_KEY"] == ""  # a key shipped in the repository would be public
    settings = Settings.from_env({**example, "SECRET_KEY": SECRET})
    assert settings.redis_url and settings.database_url.startswith("postgresql")
    assert settings.ratelimit_enabled
