"""Every adapter implements every method its port declares (the ports are runtime-checkable, so
`isinstance` checks each member), and no caller needs a method a port lacks (mypy checks that)."""
from __future__ import annotations

from shared.adapters.blobs_local import LocalBlobStore
from shared.adapters.blobs_s3 import S3BlobStore, S3Settings
from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.adapters.queue_kafka import KafkaQueue, KafkaSettings
from shared.adapters.queue_memory import MemoryQueue
from shared.adapters.windows_sql import SqlWindowStore
from shared.ports import BlobStore, MetaStore, Queue, WindowStore


def test_every_adapter_implements_its_whole_port(tmp_path):
    url = sqlite_url(tmp_path / "m.db")
    migrate(url)
    meta, windows = SqlMetaStore(url), SqlWindowStore(url)
    try:
        # Neither production client connects before its first call.
        assert isinstance(S3BlobStore(S3Settings(endpoint="127.0.0.1:1", access_key="k", secret_key="s")), BlobStore)
        assert isinstance(KafkaQueue(KafkaSettings(bootstrap="127.0.0.1:1")), Queue)
        assert isinstance(LocalBlobStore(tmp_path / "b"), BlobStore)
        assert isinstance(MemoryQueue(), Queue)
        assert isinstance(meta, MetaStore)
        assert isinstance(windows, WindowStore)
    finally:
        meta.close()
        windows.close()


def test_a_missing_method_is_seen():
    class Partial:
        def put(self, key: str, data: bytes) -> None: ...

    assert not isinstance(Partial(), BlobStore)
