"""The storage interface: the same contract for the folder store and for a real S3-compatible
server (moto's), and what each keeps beyond the bytes."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest

from service.content.guide_pages import SAMPLE_GUIDE
from service.content.storage import (
    PDF,
    Storage,
    StorageError,
    guide_key,
    storage_for,
    storage_problem,
)
from service.core.settings import Settings
from tests.conftest import SECRET, free_port, new_bucket, s3_client, s3_env

GUIDE = SAMPLE_GUIDE.read_bytes()
KEY = guide_key(GUIDE)


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
            "SECRET_KEY": SECRET,
            **env,
        }
    )


@pytest.fixture
def store(tmp_path: Path, storage_env: dict[str, str]) -> Storage:
    return storage_for(settings(tmp_path, **storage_env))


# --- the contract, for both stores ---------------------------------------------------------


def test_what_is_put_is_got_back(store: Storage):
    assert not store.exists(KEY)
    store.put(KEY, GUIDE, PDF)
    assert store.exists(KEY)
    assert store.get(KEY) == GUIDE


def test_a_key_never_put_is_a_key_error(store: Storage):
    store.put(KEY, GUIDE, PDF)
    missing = "guides/" + "0" * 64 + ".pdf"
    assert not store.exists(missing)
    with pytest.raises(KeyError):
        store.get(missing)
    with pytest.raises(KeyError):
        store.get("guides")  # a folder of the folder store, a prefix of an S3 key


def test_a_key_names_its_bytes_for_good(store: Storage):
    store.put(KEY, GUIDE, PDF)
    store.put(KEY, b"%PDF- other bytes", PDF)  # a second put of the key changes nothing
    assert store.get(KEY) == GUIDE


@pytest.mark.parametrize(
    "key",
    [
        "../outside.pdf",
        "guides/../../outside.pdf",
        "/etc/passwd",
        "guides//x.pdf",
        "guides/",
        ".hidden",
        "guides/.put-temporary",
        "",
        "a b.pdf",
        "guides\\x.pdf",
        "guides/x\x00.pdf",
        "guides/ü.pdf",
        "x" * 101,
    ],
)
def test_a_key_that_is_not_one_is_refused_by_every_call(store: Storage, key: str, tmp_path):
    before = sorted(tmp_path.rglob("*"))
    for call in (lambda: store.put(key, GUIDE, PDF), lambda: store.get(key)):
        with pytest.raises(ValueError, match="not a storage key"):
            call()
    with pytest.raises(ValueError, match="not a storage key"):
        store.exists(key)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written anywhere


def test_a_guide_is_kept_under_the_sha256_of_its_bytes():
    assert guide_key(GUIDE) == f"guides/{hashlib.sha256(GUIDE).hexdigest()}.pdf"
    assert guide_key(GUIDE + b"\n") != KEY


def test_one_store_per_process_for_the_same_settings(tmp_path: Path, storage_env):
    one = settings(tmp_path, **storage_env)
    assert storage_for(one) is storage_for(settings(tmp_path, **storage_env))


def test_a_store_that_answers_has_no_problem(tmp_path: Path, storage_env):
    assert storage_problem(settings(tmp_path, **storage_env)) is None


# --- the folder store ----------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_folder_store_is_the_instance_folders_files_and_private(tmp_path: Path):
    before = os.umask(0o022)  # the usual umask: without care, 0755 folders and 0644 files
    try:
        storage_for(settings(tmp_path)).put(KEY, GUIDE, PDF)
    finally:
        os.umask(before)
    root = tmp_path / "instance" / "files"
    stored = root / KEY
    assert stored.read_bytes() == GUIDE
    assert mode(stored) == 0o600
    assert mode(root) == mode(stored.parent) == 0o700
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary left


def test_storage_url_file_names_another_folder(tmp_path: Path):
    shared = tmp_path / "shared-volume"
    storage_for(settings(tmp_path, STORAGE_URL=f"file://{shared}")).put(KEY, GUIDE, PDF)
    assert (shared / KEY).read_bytes() == GUIDE
    assert not (tmp_path / "instance" / "files").exists()


def test_a_write_that_fails_leaves_nothing_and_says_storage(tmp_path: Path, monkeypatch):
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    store = storage_for(settings(tmp_path))
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(StorageError, match="OSError"):
        store.put(KEY, GUIDE, PDF)
    assert not store.exists(KEY)
    assert list((tmp_path / "instance" / "files" / "guides").iterdir()) == []


def test_a_folder_that_cannot_be_written_is_a_problem(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # even root cannot make a folder inside a file
    problem = storage_problem(settings(tmp_path, STORAGE_URL=f"file://{blocker / 'files'}"))
    assert problem == f"storage folder not writable: {blocker / 'files'}"


# --- the S3 store --------------------------------------------------------------------------


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return new_bucket(s3_endpoint)


def test_s3_keeps_the_content_type_under_the_prefix(tmp_path: Path, s3_endpoint, bucket):
    store = storage_for(settings(tmp_path, **s3_env(s3_endpoint, bucket, "site/uploads")))
    store.put(KEY, GUIDE, PDF)
    head = s3_client(s3_endpoint).head_object(Bucket=bucket, Key=f"site/uploads/{KEY}")
    assert head["ContentType"] == "application/pdf"
    assert head["ContentLength"] == len(GUIDE)


def test_s3_without_its_bucket_is_a_storage_error(tmp_path: Path, s3_endpoint):
    gone = settings(tmp_path, **s3_env(s3_endpoint, "no-such-bucket"))
    with pytest.raises(StorageError, match=f"s3://no-such-bucket at {s3_endpoint}: NoSuchBucket"):
        storage_for(gone).put(KEY, GUIDE, PDF)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage_for(gone).get(KEY)
    assert storage_problem(gone) == f"s3://no-such-bucket at {s3_endpoint}: no such bucket"


def test_s3_that_does_not_answer_fails_at_once_with_a_storage_error(tmp_path: Path, caplog):
    dead = f"http://127.0.0.1:{free_port()}"
    down = settings(tmp_path, **s3_env(dead, "guides"))
    with caplog.at_level(logging.DEBUG, logger="botocore"):
        for call in (lambda: storage_for(down).get(KEY), lambda: storage_for(down).exists(KEY)):
            with pytest.raises(StorageError, match=f"s3://guides at {dead} unreachable"):
                call()
    assert storage_problem(down) == f"s3://guides at {dead} unreachable: EndpointConnectionError"
    # One retry per call, not boto3's usual four attempts: a dead store fails fast.
    assert caplog.text.count("Retry needed") == 2
