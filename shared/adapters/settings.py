"""The settings of the production adapters, apart from the adapters: reading them imports neither
the Kafka nor the S3 client, so the CLI and `profefe serve` stay quick to start."""
from __future__ import annotations

from dataclasses import dataclass

from shared.model import MAX_BODY_BYTES
from shared.settings import setting

# A PostgreSQL client drops its connection this long after the server should have cancelled the
# statement: the answer was lost on the way (a network that drops packets).
SQL_REPLY_GRACE = 5.0

# Room for a record's fields (service, up to 64 labels of up to 1280 characters) beside the body.
RECORD_OVERHEAD_BYTES = 1 << 20


def record_max_bytes(max_body_bytes: int) -> int:
    """The largest Kafka message a record with a body of `max_body_bytes` may become."""
    return max_body_bytes + RECORD_OVERHEAD_BYTES


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str = setting("", "Kafka brokers.", flag="--kafka-bootstrap", metavar="HOST:PORT[,...]")
    topic: str = setting("profefe-profiles", "Topic of accepted uploads.", flag="--kafka-topic")
    dead_letter_topic: str = setting("", "Where records that can never be indexed go; default: the topic + '-dead'.",
                                     flag="--kafka-dead-letter-topic", hidden_default=True)
    group: str = setting("profefe-indexer", "Consumer group the indexers share.", flag="--kafka-group")
    publish_timeout: float = setting(10.0, "Seconds to wait for Kafka's acknowledgement before answering 503.",
                                     minimum=0.1, maximum=120)
    request_timeout: float = setting(30.0, "Seconds any other Kafka request may wait for its answer (fetches, "
                                           "offset commits, group membership, topic creation).",
                                     flag="--kafka-request-timeout", minimum=1, maximum=300)
    # kafka-python's default is 45 s (KIP-735); an indexer killed without leaving the group holds
    # its partitions that long, so a crash stalls its share of the topic for the whole of it.
    session_timeout: float = setting(10.0, "Seconds an indexer may go without a heartbeat before the group hands "
                                           "its partitions to the others (the stall after a crash).",
                                     flag="--kafka-session-timeout", minimum=6, maximum=300)
    max_message_bytes: int = record_max_bytes(MAX_BODY_BYTES)  # set from the role's body limit
    client_id: str = "profefe"
    # How long the broker may hold a fetch that found nothing. Kafka's 500 ms default showed up
    # whole in the index lag (p50 0.5 s, p99 1.5 s at 60 profiles/s vs 0.17 s / 0.5 s at 50 ms):
    # a fetch sent while some partitions still have records in the client's buffer leaves those
    # out, and a record arriving for them waits for it.
    fetch_max_wait_ms: int = 50
    # The wait once a poll has found nothing: then no partition is left out of the fetch, and the
    # broker answers it as soon as a record arrives, so the longer wait costs no lag. An idle
    # consumer asks twice a second instead of 20 times (3% of a core).
    idle_fetch_max_wait_ms: int = 500
    # The longest wait between two tries to reach a broker that is away. kafka-python's 30 s (the
    # wait doubling from 50 ms) kept the indexers away for up to 15 s after a restarted broker was
    # back (the fault suite's Kafka outage, with the daemons connected directly); Kafka's Java
    # client waits at most 1 s.
    reconnect_backoff_max_ms: int = 1000

    def __post_init__(self) -> None:
        if not self.bootstrap.strip():
            raise ValueError("no Kafka bootstrap servers")
        if not self.dead_letter_topic:
            object.__setattr__(self, "dead_letter_topic", f"{self.topic}-dead")
        if self.publish_timeout <= 0:
            raise ValueError(f"publish_timeout must be positive, got {self.publish_timeout}")
        if not 1 <= self.request_timeout <= 300:
            raise ValueError(f"request_timeout must be in 1..300 seconds, got {self.request_timeout}")
        if not 6 <= self.session_timeout <= 300:
            raise ValueError(f"session_timeout must be in 6..300 seconds (the broker's bounds), got {self.session_timeout}")
        for name in ("topic", "dead_letter_topic", "group"):
            if not getattr(self, name):
                raise ValueError(f"Kafka {name} is empty")
        if self.topic == self.dead_letter_topic:
            raise ValueError("the dead-letter topic must differ from the topic")
        if self.max_message_bytes < 1 << 20:
            raise ValueError(f"max_message_bytes {self.max_message_bytes} is below Kafka's 1 MiB default")

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]


@dataclass(frozen=True)
class S3Settings:
    endpoint: str = setting("", "S3-compatible object store, without scheme.", flag="--s3-endpoint",
                            metavar="HOST:PORT")
    access_key: str = setting("", "Access key of the object store.", flag="--s3-access-key", hidden_default=True)
    secret_key: str = setting("", "Secret key of the object store; prefer the variable: a flag is visible to "
                                  "other users in `ps`.", flag="--s3-secret-key", secret=True)
    bucket: str = setting("profefe", "Bucket of the blobs.", flag="--s3-bucket")
    secure: bool = setting(False, "HTTPS to the object store.", flag="--s3-secure", negatable=True)
    region: str | None = setting("", "Saves asking the store for the bucket's region.", flag="--s3-region",
                                 hidden_default=True)
    connect_timeout: float = setting(3.0, "Seconds to connect to the object store, and to send each part of a request.",
                                     flag="--s3-connect-timeout", minimum=0.1, maximum=300)
    read_timeout: float = setting(30.0, "Seconds the object store may stay silent while it answers.",
                                  flag="--s3-read-timeout", minimum=0.1, maximum=3600)
    writers: int = 8  # blobs of one `put_many` uploaded at once
    readers: int = 8  # blobs of one `get_many` read at once, ahead of the merge reading them

    def __post_init__(self) -> None:
        if not self.endpoint or "://" in self.endpoint:
            raise ValueError(f"S3 endpoint {self.endpoint!r}: want host:port, without a scheme")
        if not self.bucket:
            raise ValueError("no S3 bucket")
        if not self.region:
            object.__setattr__(self, "region", None)
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("S3 timeouts must be positive")

    def __repr__(self) -> str:  # keep the secret key out of logs
        return f"S3Settings(endpoint={self.endpoint!r}, bucket={self.bucket!r}, secure={self.secure})"


@dataclass(frozen=True)
class SqlTimeouts:
    """What bounds a PostgreSQL client's waits (the roles declare the settings, see services/roles.py)."""

    connect: float = 5.0  # seconds to open a connection; libpq's floor is 2
    statement: float = 0.0  # seconds one statement may run; 0: no limit

    @property
    def reply(self) -> float:
        """Seconds the client waits for any answer of the server; 0: no limit."""
        return self.statement + SQL_REPLY_GRACE if self.statement > 0 else 0.0
