"""The S3 store: one object per key in a bucket (under STORAGE_URL's prefix) of any
S3-compatible service (AWS, MinIO, Garage, R2...), through boto3. Short timeouts and one
retry: a store that does not answer fails the request within seconds, never hangs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..core.settings import StorageUrl
from .storage import StorageError, checked_key

CONNECT_TIMEOUT = 2  # seconds
READ_TIMEOUT = 5  # seconds without a byte, not for the whole body
ATTEMPTS = 2  # the first try and one retry, boto3's standard backoff between them
MISSING = ("NoSuchKey", "404", "NotFound")
# A HEAD answer has no body, so no error code: only its status, said in words here.
HEAD_STATUS = {"404": "no such bucket", "403": "access denied (check the keys and the bucket)"}


class S3Storage:
    """Keeps each object's Content-Type, so the bucket can serve it as it is."""

    def __init__(self, url: StorageUrl) -> None:
        self.url = url
        self.where = f"s3://{url.bucket}" + (f" at {url.endpoint_url}" if url.endpoint_url else "")

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.exists(key):  # one HEAD rather than the upload of bytes that are there
            return
        with self._answers():
            self._client.put_object(
                Bucket=self.url.bucket, Key=self._name(key), Body=data, ContentType=content_type
            )

    def get(self, key: str) -> bytes:
        with self._answers():
            try:
                answer = self._client.get_object(Bucket=self.url.bucket, Key=self._name(key))
            except ClientError as exc:
                if _code(exc) in MISSING:
                    raise KeyError(key) from None
                raise
            body: bytes = answer["Body"].read()
            return body

    def exists(self, key: str) -> bool:
        with self._answers():
            try:
                self._client.head_object(Bucket=self.url.bucket, Key=self._name(key))
            except ClientError as exc:
                if _code(exc) in MISSING:  # a HEAD has no body: a missing bucket says 404 too
                    return False
                raise
            return True

    def problem(self) -> str | None:
        try:
            with self._answers():
                self._client.head_bucket(Bucket=self.url.bucket)
        except StorageError as exc:
            return str(exc)
        return None

    def _name(self, key: str) -> str:
        checked_key(key)
        return f"{self.url.prefix}/{key}" if self.url.prefix else key

    @contextmanager
    def _answers(self) -> Iterator[None]:
        """Anything but a missing key becomes a StorageError that names the store."""
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            raise StorageError(f"{self.where}: {HEAD_STATUS.get(code, code)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self.where} unreachable: {type(exc).__name__}") from exc

    @cached_property
    def _client(self) -> Any:
        # Made at first use, inside _answers: a region boto3 cannot work with is a StorageError
        # of the request, not a crash of the start.
        url = self.url
        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
            # Other stores than AWS: bucket in the path (no DNS name per bucket), and checksums
            # only where S3 requires them (boto3's newer default trailers, which several
            # S3-compatible servers refuse).
            s3={"addressing_style": "path"} if url.endpoint_url else None,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            return boto3.session.Session().client(
                "s3",
                endpoint_url=url.endpoint_url,
                region_name=url.region,
                aws_access_key_id=url.access_key_id,
                aws_secret_access_key=url.secret_access_key,
                aws_session_token=url.session_token,
                config=config,
            )
        except ValueError as exc:  # such as an empty AWS_DEFAULT_REGION that boto3 read itself
            raise StorageError(f"{self.where}: boto3 refused its settings: {exc}") from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown error"))
