"""The S3 store the suites use is a real one: buckets, objects, listing and multipart uploads."""
from __future__ import annotations

import io
import os
import uuid

import pytest

from tests.services import S3TestSettings, drop_bucket, minio_client, read_object

pytestmark = pytest.mark.s3

MIB = 1024 * 1024
PART_SIZE = 5 * MIB  # S3's smallest part
# Larger than one part, so the client must upload it in two parts.
LARGE_OBJECT_BYTES = 6 * MIB + 12345


def test_objects_round_trip_including_multipart(s3_settings: S3TestSettings) -> None:
    client = minio_client(s3_settings)
    bucket = "profefe-services-" + uuid.uuid4().hex[:12]
    small_name, large_name = "small/profile.txt", "large/profile.bin"
    small = b"cpu profile of service-a\n"
    large = os.urandom(LARGE_OBJECT_BYTES)

    client.make_bucket(bucket)
    try:
        assert client.bucket_exists(bucket)
        client.put_object(bucket, small_name, io.BytesIO(small), len(small))
        client.put_object(bucket, large_name, io.BytesIO(large), len(large), part_size=PART_SIZE)

        listed = {o.object_name: o.size for o in client.list_objects(bucket, recursive=True)}
        assert listed == {small_name: len(small), large_name: len(large)}

        stat = client.stat_object(bucket, large_name)
        assert stat.size == len(large)
        # S3 gives a multipart object the ETag "<md5 of part md5s>-<part count>".
        assert (stat.etag or "").endswith("-2")

        assert read_object(client, bucket, small_name) == small
        assert read_object(client, bucket, large_name) == large

        client.remove_object(bucket, small_name)
        client.remove_object(bucket, large_name)
        assert list(client.list_objects(bucket, recursive=True)) == []
    finally:
        for leftover in client.list_objects(bucket, recursive=True):
            client.remove_object(bucket, leftover.object_name)
        client.remove_bucket(bucket)
    assert not client.bucket_exists(bucket)


def test_test_buckets_are_dropped_with_their_objects(s3_settings):
    client = minio_client(s3_settings)
    bucket = "profefe-services-" + uuid.uuid4().hex[:12]
    client.make_bucket(bucket)
    client.put_object(bucket, "a/b", io.BytesIO(b"x"), 1)
    assert client.bucket_exists(bucket)
    drop_bucket(s3_settings, bucket)
    assert not client.bucket_exists(bucket)
    drop_bucket(s3_settings, bucket)  # gone already: fine


def test_the_fault_audit_reads_what_the_store_holds(s3_settings: S3TestSettings) -> None:
    """The fault suite's audit takes a profile's MD5 from the listing's ETag and reads only an
    object whose ETag is of another form: this store must give the MD5 of what it was sent, and
    the audit must tell a changed, a missing and a multipart object from one stored as sent."""
    from shared.model import blob_key, new_id
    from tests.faults.harness import md5_hex, stored_digests

    client = minio_client(s3_settings)
    bucket = "profefe-services-" + uuid.uuid4().hex[:12]
    client.make_bucket(bucket)
    try:
        kept, changed, missing, large = (new_id() for _ in range(4))
        body = os.urandom(20_000)
        big = os.urandom(LARGE_OBJECT_BYTES)
        client.put_object(bucket, blob_key(kept), io.BytesIO(body), len(body))
        client.put_object(bucket, blob_key(changed), io.BytesIO(body[::-1]), len(body))
        client.put_object(bucket, blob_key(large), io.BytesIO(big), len(big), part_size=PART_SIZE)
        got = stored_digests(client, bucket, [kept, changed, missing, large])
        assert got == {kept: md5_hex(body), changed: md5_hex(body[::-1]), large: md5_hex(big)}
    finally:
        drop_bucket(s3_settings, bucket)
