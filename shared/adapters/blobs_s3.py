"""`BlobStore` on an S3-compatible object store (MinIO, SeaweedFS, AWS S3) through the `minio` client.

One object per key in one bucket. A PUT of a whole object is atomic in S3, and writing the same
key twice leaves the second copy, so a redelivered record is harmless. The bucket is made by
`profefe migrate` (`create_bucket`), never on the write path.
"""
from __future__ import annotations

import io
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from itertools import islice
from typing import Iterator, Literal, Sequence

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError

from shared.errors import NotFound, Unavailable
from shared.adapters.settings import S3Settings

__all__ = ["S3BlobStore", "S3Settings", "create_bucket", "make_client"]

_MISSING = {"NoSuchKey", "NoSuchObject"}
_NO_BUCKET = "NoSuchBucket"


def make_client(settings: S3Settings, *, pool_size: int = 16) -> Minio:
    # minio's default pool waits 5 minutes and retries five times: a store that is down must
    # answer 503 in seconds instead.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
        maxsize=pool_size,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=2, connect=1, backoff_factor=0.1, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(settings.endpoint, access_key=settings.access_key, secret_key=settings.secret_key,
                 secure=settings.secure, region=settings.region, http_client=http)


class S3BlobStore:
    """`BlobStore` over one bucket."""

    def __init__(self, settings: S3Settings, client: Minio | None = None) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._client = client or make_client(settings, pool_size=max(16, settings.writers, settings.readers))
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self._guard(key):
            self._client.put_object(self.bucket, key, io.BytesIO(data), len(data))

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Upload concurrently: each PUT waits on the network, not on this process."""
        if len(items) <= 1 or self.settings.writers == 1:
            for key, data in items:
                self.put(key, data)
            return
        for _ in self._pool("writers").map(lambda item: self.put(*item), items):
            pass

    def close(self) -> None:
        with self._pools_lock:
            pools, self._pools = self._pools, {}
        for kind, pool in pools.items():
            pool.shutdown(wait=True, cancel_futures=kind == "readers")  # reads ahead nobody will take

    def get(self, key: str) -> bytes:
        with self._guard(key):
            resp = self._client.get_object(self.bucket, key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def get_many(self, keys: Sequence[str]) -> Iterator[bytes]:
        """`readers` GETs in flight ahead of the caller: a merge then waits on the store about once
        per `readers` blobs instead of once per blob. Reads the caller never takes are dropped."""
        ahead = self.settings.readers
        if len(keys) <= 1 or ahead == 1:
            for key in keys:
                yield self.get(key)
            return
        pool = self._pool("readers")
        todo = iter(keys)
        pending: deque[Future[bytes]] = deque(pool.submit(self.get, key) for key in islice(todo, ahead))
        try:
            while pending:
                data = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(self.get, following))
                yield data
        finally:
            for f in pending:
                f.cancel()

    def _pool(self, kind: Literal["writers", "readers"]) -> ThreadPoolExecutor:
        """The threads of `put_many` or `get_many`, made at first use (sized by the setting of that name)."""
        with self._pools_lock:
            pool = self._pools.get(kind)
            if pool is None:
                pool = self._pools[kind] = ThreadPoolExecutor(getattr(self.settings, kind),
                                                              thread_name_prefix=f"s3-{kind}")
            return pool

    def delete(self, key: str) -> None:
        with self._guard(key):
            self._client.remove_object(self.bucket, key)

    def list(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        with self._guard(None):
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.is_dir or obj.object_name is None:
                    continue
                modified = obj.last_modified or datetime.now(timezone.utc)
                yield obj.object_name, modified.astimezone(timezone.utc)

    def ping(self) -> None:
        with self._guard(None):
            if not self._client.bucket_exists(self.bucket):
                raise Unavailable(f"S3 bucket {self.bucket!r} does not exist (run `profefe migrate`)")

    def _guard(self, key: str | None) -> _S3Errors:
        return _S3Errors(self.settings, key)


class _S3Errors:
    """S3's answers and failures -> the domain's errors."""

    def __init__(self, settings: S3Settings, key: str | None) -> None:
        self.settings = settings
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None:
            return False
        where = f"S3 {self.settings.endpoint}/{self.settings.bucket}"
        if isinstance(exc, S3Error):
            if exc.code in _MISSING:
                raise NotFound(f"nothing found: no blob {self.key!r}") from None
            if exc.code == _NO_BUCKET:
                raise Unavailable(f"{where}: bucket does not exist (run `profefe migrate`)") from exc
            raise Unavailable(f"{where} refused the request: {exc.code}: {exc.message}") from exc
        if isinstance(exc, (MinioException, HTTPError, OSError)):
            raise Unavailable(f"{where} does not answer: {exc}") from exc
        return False


def create_bucket(settings: S3Settings) -> bool:
    """Make the bucket when it does not exist; True when it was made."""
    client = make_client(settings, pool_size=1)
    with _S3Errors(settings, None):
        if client.bucket_exists(settings.bucket):
            return False
        try:
            client.make_bucket(settings.bucket)
        except S3Error as exc:
            if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            raise
        return True
