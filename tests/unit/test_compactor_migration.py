"""Migration 0002 puts profiles stored before it into their series, with one counter per
(series, hour), exactly as `MetaStore.put` would have: the compactor then picks them up. Later
migrations keep every profile and what finds it."""
from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from shared.adapters.meta_sql import SqlMetaStore, migrate, sqlite_url
from shared.adapters.windows_sql import SqlWindowStore
from shared.model import Labels, ProfileType, Query
from shared.windows import HOUR, HourState, Series, from_epoch

MIGRATIONS = Path(__file__).resolve().parents[2] / "shared" / "migrations"


def test_existing_profiles_land_in_their_series(tmp_path):
    url = sqlite_url(tmp_path / "old.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO profiles VALUES (:id, 'svc', :t, :at, :at, 5, :sig)"), [
            {"id": "a" * 20, "t": "cpu", "at": 7 * HOUR + 1, "sig": "s"},
            {"id": "b" * 20, "t": "cpu", "at": 7 * HOUR + 3599, "sig": "s"},
            {"id": "c" * 20, "t": "cpu", "at": 8 * HOUR, "sig": "s"},
            {"id": "d" * 20, "t": "trace", "at": 7 * HOUR, "sig": ""},
        ])
        conn.execute(sa.text("INSERT INTO profile_labels VALUES (:id, :pos, :k, :v)"), [
            {"id": "a" * 20, "pos": 0, "k": "b", "v": "2"}, {"id": "a" * 20, "pos": 1, "k": "a", "v": "1"},
            {"id": "b" * 20, "pos": 0, "k": "a", "v": "1"}, {"id": "b" * 20, "pos": 1, "k": "b", "v": "2"},
        ])
    engine.dispose()
    migrate(url)

    store = SqlWindowStore(url)
    try:
        labelled = Series.of("svc", ProfileType.CPU, Labels.parse("a=1,b=2"), "s")
        bare = Series.of("svc", ProfileType.CPU, Labels(), "s")
        assert store.series_by_id(labelled.id) == labelled
        assert store.hour_states([labelled.id, bare.id], 0, 10 * HOUR) in (
            [HourState(labelled.id, 7 * HOUR, 2), HourState(bare.id, 8 * HOUR, 1)],
            [HourState(bare.id, 8 * HOUR, 1), HourState(labelled.id, 7 * HOUR, 2)],
        )
        assert sorted(store.raw_in(labelled.id, 7 * HOUR, 8 * HOUR - 1)) == [("a" * 20, 5, None), ("b" * 20, 5, None)]
        assert store.series_of("svc", ProfileType.TRACE, Labels()) == []
    finally:
        store.close()


def test_the_retention_indexes_keep_every_profile(tmp_path):
    url = sqlite_url(tmp_path / "before-0004.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0002")
    engine = sa.create_engine(url)
    rows = [{"id": f"{i:020d}", "t": "cpu", "at": i * HOUR, "sig": "s"} for i in range(50)]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO profiles VALUES (:id, 'svc', :t, :at, :at, 5, :sig, NULL)"), rows)
    migrate(url)
    try:
        with engine.connect() as conn:
            kept = [r[0] for r in conn.execute(sa.text("SELECT id FROM profiles ORDER BY id"))]
            indexes = {ix["name"] for t in ("profiles", "series_hours") for ix in sa.inspect(conn).get_indexes(t)}
        assert kept == [r["id"] for r in rows]
        assert {"profiles_created", "series_hours_pruned_hour"} <= indexes
    finally:
        engine.dispose()


def test_series_labels_are_filled_from_the_series_so_a_label_filter_finds_older_profiles(tmp_path):
    url = sqlite_url(tmp_path / "before-0006.db")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0005")
    labelled = Series.of("svc", ProfileType.CPU, Labels.parse("zone=b,host=h1"), "s")
    other = Series.of("svc", ProfileType.CPU, Labels.parse("zone=b,host=h2"), "s")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO series VALUES (:id, 'svc', 'cpu', 's', :labels)"), [
            {"id": s.id, "labels": json.dumps([[lb.key, lb.value] for lb in s.labels])} for s in (labelled, other)])
        conn.execute(sa.text("INSERT INTO profiles VALUES (:id, 'svc', 'cpu', :at, :at, 5, 's', :sid, NULL, 1)"), [
            {"id": "a" * 20, "at": 7 * HOUR, "sid": labelled.id}, {"id": "b" * 20, "at": 7 * HOUR, "sid": other.id}])
        conn.execute(sa.text("INSERT INTO profile_labels VALUES (:id, :pos, :k, :v)"), [
            {"id": "a" * 20, "pos": 0, "k": "host", "v": "h1"}, {"id": "a" * 20, "pos": 1, "k": "zone", "v": "b"},
            {"id": "b" * 20, "pos": 0, "k": "host", "v": "h2"}, {"id": "b" * 20, "pos": 1, "k": "zone", "v": "b"}])
    engine.dispose()
    migrate(url)

    meta, store = SqlMetaStore(url), SqlWindowStore(url)
    try:
        window = (from_epoch(0), from_epoch(10 * HOUR))
        found = meta.find(Query("svc", ProfileType.CPU, Labels.parse("host=h1"), *window))
        assert [(m.id, m.labels) for m in found] == [("a" * 20, labelled.labels)]
        assert len(meta.find(Query("svc", None, Labels.parse("zone=b"), *window))) == 2
        assert store.series_of("svc", ProfileType.CPU, Labels.parse("zone=b,host=h2")) == [other]
    finally:
        meta.close()
        store.close()
