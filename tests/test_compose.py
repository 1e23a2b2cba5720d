"""The compose file's structure and .env.example against the settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from service.settings import Settings
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("migrate", "web", "worker", "beat")
SETTING_CALL = re.compile(
    r'(?:_get|_boolean|_positive_number|_optional_file|_optional_http_url)\(env, "([A-Z_]+)"'
    r'|env\.get\("([A-Z_]+)"\)'
)


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else cmd


def test_every_service_has_a_healthcheck(services):
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"] != ["NONE"], f"{name} disables its healthcheck"


def test_exactly_one_beat(services):
    beats = [name for name, svc in services.items() if {"beat", "-B", "--beat"} & set(command(svc))]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1


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
    """The environment variables service/settings.py reads, found in its source."""
    source = (ROOT / "service" / "settings.py").read_text()
    read = {a or b for a, b in SETTING_CALL.findall(source)}
    assert "SECRET_KEY" in read and "INSTANCE_PATH" in read  # the pattern still finds them
    return read


def test_env_example_names_exactly_the_settings():
    assert set(env_example()) == settings_read()


def test_env_example_values_are_valid():
    example = env_example()
    assert example["SECRET_KEY"] == ""  # a key shipped in the repository would be public
    settings = Settings.from_env({**example, "SECRET_KEY": SECRET})
    assert settings.redis_url and settings.database_url.startswith("postgresql")
    assert settings.ratelimit_enabled
