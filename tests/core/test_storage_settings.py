"""STORAGE_URL and the standard AWS_* variables: read once, their shape judged at start (never
the store itself, which /readyz asks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.core.settings import Settings, SettingsError, StorageUrl
from tests.conftest import SECRET


def storage(tmp_path: Path, **env: str) -> StorageUrl:
    return Settings.from_env(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
            "SECRET_KEY": SECRET,
            **env,
        }
    ).storage_url


def test_unset_is_the_instance_folders_files(tmp_path: Path):
    assert storage(tmp_path) == StorageUrl(scheme="file", path=tmp_path / "instance" / "files")


def test_file_names_a_folder(tmp_path: Path):
    url = storage(tmp_path, STORAGE_URL="file:///mnt/shared/leadmagnet%20files")
    assert url == StorageUrl(scheme="file", path=Path("/mnt/shared/leadmagnet files"))


def test_s3_takes_the_standard_aws_variables(tmp_path: Path):
    url = storage(
        tmp_path,
        STORAGE_URL="s3://leads.example/uploads/guides/",
        AWS_ENDPOINT_URL="http://minio:9000",
        AWS_REGION="eu-central-1",
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="secret-access-key",
        AWS_SESSION_TOKEN="session-token",
    )
    assert url == StorageUrl(
        scheme="s3",
        bucket="leads.example",
        prefix="uploads/guides",
        endpoint_url="http://minio:9000",
        region="eu-central-1",
        access_key_id="AKIAEXAMPLE",
        secret_access_key="secret-access-key",
        session_token="session-token",
    )
    assert "secret-access-key" not in repr(url) and "session-token" not in repr(url)


def test_the_urls_own_endpoint_and_region_win(tmp_path: Path):
    url = storage(
        tmp_path,
        STORAGE_URL="s3://guides?endpoint_url=https://s3.example.net&region=garage",
        AWS_ENDPOINT_URL="http://minio:9000",
        AWS_REGION="eu-central-1",
    )
    assert (url.bucket, url.prefix) == ("guides", "")
    assert (url.endpoint_url, url.region) == ("https://s3.example.net", "garage")
    # Unset: boto3 looks for them its own way (AWS_DEFAULT_REGION, ~/.aws, an instance role).
    assert url.access_key_id is url.secret_access_key is url.session_token is None


def test_aws_variables_are_not_judged_without_an_s3_store(tmp_path: Path):
    # They may be there for another program: only an s3:// STORAGE_URL uses them.
    url = storage(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_REGION="Not A Region")
    assert url.scheme == "file"


@pytest.mark.parametrize(
    ("env", "name", "problem"),
    [
        ({"STORAGE_URL": "ftp://files.example.com"}, "STORAGE_URL", "must be s3://bucket"),
        ({"STORAGE_URL": "file://relative/folder"}, "STORAGE_URL", "must be s3://bucket"),
        ({"STORAGE_URL": "s3://"}, "STORAGE_URL", "names no valid bucket"),
        ({"STORAGE_URL": "s3://Guides"}, "STORAGE_URL", "names no valid bucket"),
        ({"STORAGE_URL": "s3://minio:9000/guides"}, "STORAGE_URL", "names no valid bucket"),
        ({"STORAGE_URL": "s3://key:secret@guides"}, "STORAGE_URL", "must not hold keys"),
        ({"STORAGE_URL": "s3://guides/../etc"}, "STORAGE_URL", "has a prefix of other"),
        ({"STORAGE_URL": "s3://guides?endpoint=http://x"}, "STORAGE_URL", "takes endpoint_url="),
        (
            {"STORAGE_URL": "s3://guides?region=a&region=b"},
            "STORAGE_URL",
            "takes endpoint_url= and region= once each",
        ),
        (
            {"STORAGE_URL": "s3://guides?endpoint_url=minio:9000"},
            "STORAGE_URL",
            "needs an http(s) endpoint",
        ),
        (
            {"STORAGE_URL": "s3://guides", "AWS_ENDPOINT_URL": "minio:9000"},
            "AWS_ENDPOINT_URL",
            "needs an http(s) endpoint",
        ),
        (
            {"STORAGE_URL": "s3://guides", "AWS_REGION": "EU West"},
            "AWS_REGION",
            "needs a region like eu-west-1",
        ),
        (
            {"STORAGE_URL": "s3://guides", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"},
            "AWS_SECRET_ACCESS_KEY",
            "is required when AWS_ACCESS_KEY_ID is set",
        ),
        (
            {"STORAGE_URL": "s3://guides", "AWS_SECRET_ACCESS_KEY": "secret"},
            "AWS_ACCESS_KEY_ID",
            "is required when AWS_SECRET_ACCESS_KEY is set",
        ),
    ],
)
def test_a_malformed_store_stops_the_start_naming_the_setting(
    tmp_path: Path, env: dict[str, str], name: str, problem: str
):
    with pytest.raises(SettingsError) as raised:
        storage(tmp_path, **env)
    assert raised.value.name == name
    assert problem in raised.value.problem
    assert "\n" not in str(raised.value)
