"""series, per-hour counters and pre-merged windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Profiles stored before this revision are put into their series here, with one counter row per
(series, hour) that holds them, so the compactor picks them up like any new profile. The series
key is computed as `shared.windows.series_id` does; it is written out here because a migration
must keep doing what it did when it ran.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_HOUR = 3600


def upgrade() -> None:
    op.add_column("profiles", sa.Column("series_id", sa.String(32), nullable=True))
    # The compactor reads one series over one hour; retention walks a series' hours.
    op.create_index("profiles_series_created", "profiles", ["series_id", "created_at"])
    op.create_table(
        "series",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),  # JSON [[key, value], ...], sorted
    )
    op.create_index("series_service_type", "series", ["service", "type"])
    op.create_table(
        "series_hours",
        sa.Column("series_id", sa.String(32), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("pruned", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("series_hours_hour", "series_hours", ["hour"])
    op.create_table(
        "windows",
        sa.Column("series_id", sa.String(32), primary_key=True),
        sa.Column("span", sa.Integer, primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True),
        sa.Column("blob_key", sa.Text, nullable=True),
        sa.Column("built_from", sa.BigInteger, nullable=False),
        sa.Column("profiles", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("built_at", sa.BigInteger, nullable=False),
    )
    op.create_index("windows_start", "windows", ["start"])
    _backfill(op.get_bind())


def _series_id(service: str, ptype: str, pairs: list[tuple[str, str]], signature: str) -> str:
    raw = json.dumps([service, ptype, sorted(pairs), signature], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _backfill(conn: sa.Connection) -> None:
    labels: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pid, key, value in conn.execute(
        sa.text("SELECT profile_id, key, value FROM profile_labels ORDER BY profile_id, position")
    ):
        labels[pid].append((key, value))
    series: dict[str, dict] = {}
    hours: Counter[tuple[str, int]] = Counter()
    updates = []
    rows = conn.execute(
        sa.text("SELECT id, service, type, signature, created_at FROM profiles WHERE type <> 'trace'")
    ).all()
    for pid, service, ptype, signature, created_at in rows:
        pairs = sorted(labels.get(pid, []))
        sid = _series_id(service, ptype, pairs, signature)
        series.setdefault(sid, {"id": sid, "service": service, "type": ptype, "signature": signature,
                                "labels": json.dumps(pairs, ensure_ascii=False)})
        hours[(sid, created_at - created_at % _HOUR)] += 1
        updates.append({"pid": pid, "sid": sid})
    if updates:
        conn.execute(sa.text("UPDATE profiles SET series_id = :sid WHERE id = :pid"), updates)
    if series:
        conn.execute(
            sa.text("INSERT INTO series (id, service, type, signature, labels) "
                    "VALUES (:id, :service, :type, :signature, :labels)"),
            list(series.values()),
        )
    if hours:
        conn.execute(
            sa.text("INSERT INTO series_hours (series_id, hour, version, pruned) VALUES (:s, :h, :v, :p)"),
            [{"s": s, "h": h, "v": n, "p": False} for (s, h), n in hours.items()],
        )


def downgrade() -> None:
    op.drop_table("windows")
    op.drop_table("series_hours")
    op.drop_index("series_service_type", table_name="series")
    op.drop_table("series")
    op.drop_index("profiles_series_created", table_name="profiles")
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("series_id")
