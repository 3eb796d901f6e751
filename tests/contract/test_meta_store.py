"""The MetaStore contract."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.adapters.meta_sql import PROBED_WINDOW, SqlMetaStore, sqlite_url
from shared.errors import BadRequest, Unavailable
from shared.model import Labels, ProfileMeta, ProfileType, Query, new_id
from shared.ports import MetaStore

T0 = datetime(2026, 1, 1, 21, 14, 0, tzinfo=timezone.utc)


def meta(service, *, at=T0, ptype=ProfileType.CPU, labels="", pid=None, size=100, signature="samples/count"):
    return ProfileMeta(
        id=pid or new_id(at.timestamp()),
        service=service,
        type=ptype,
        labels=Labels.parse(labels),
        created_at=at,
        received_at=at + timedelta(seconds=3),
        size=size,
        signature=signature if ptype is not ProfileType.TRACE else "",
    )


def query(service, *, start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), ptype=None, labels="", limit=None):
    return Query(service=service, type=ptype, labels=Labels.parse(labels), start=start, end=end, limit=limit)


def test_is_a_meta_store(meta_store):
    assert isinstance(meta_store, MetaStore)


def test_put_then_find_keeps_every_field(meta_store, ns):
    m = meta(ns, labels="z=1,a=2,a=1,k=", ptype=ProfileType.HEAP, size=12345, signature="alloc_objects/count")
    meta_store.put([m])
    assert meta_store.find(query(ns)) == [m]
    assert meta_store.get_many([m.id]) == [m]


def test_totals_come_back_as_put(meta_store, ns):
    made = [replace(meta(ns, at=T0 + timedelta(seconds=i), labels="a=x"), totals=totals)
            for i, totals in enumerate([(7,), (0, 2**62, 3), (), (1, -1)])]
    trace = meta(ns, at=T0 + timedelta(seconds=9), ptype=ProfileType.TRACE, labels="a=x")
    meta_store.put([*made, trace])
    assert meta_store.find(query(ns)) == [*made, trace]
    assert sorted(meta_store.get_many([m.id for m in made]), key=lambda m: m.created_at) == made
    assert [t for _, _, t in meta_store.sample_totals(query(ns, ptype=ProfileType.CPU))] == [
        m.totals or None for m in made]


def test_put_is_idempotent_by_id(meta_store, ns):
    m = meta(ns, labels="a=1")
    meta_store.put([m])
    meta_store.put([m, meta(ns, pid=m.id, labels="b=2", size=1)])
    assert meta_store.find(query(ns)) == [m]


def test_put_nothing(meta_store):
    meta_store.put([])


def test_find_ascending_ties_by_id(meta_store, ns):
    tied = [meta(ns, at=T0) for _ in range(4)]
    later = meta(ns, at=T0 + timedelta(seconds=1))
    earlier = meta(ns, at=T0 - timedelta(seconds=1))
    meta_store.put([later, *tied, earlier])
    want = [earlier.id, *sorted(m.id for m in tied), later.id]
    assert [m.id for m in meta_store.find(query(ns))] == want


def test_find_limit_keeps_the_newest_ascending(meta_store, ns):
    made = [meta(ns, at=T0 + timedelta(seconds=i)) for i in range(5)]
    meta_store.put(list(reversed(made)))
    assert [m.id for m in meta_store.find(query(ns, limit=2))] == [m.id for m in made[3:]]
    assert [m.id for m in meta_store.find(query(ns, limit=9))] == [m.id for m in made]


@pytest.mark.parametrize(
    "start, end, found",
    [
        (T0, T0, True),
        (T0 - timedelta(seconds=1), T0 - timedelta(seconds=1), False),
        (T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), False),
        (T0 + timedelta(microseconds=900_000), T0 + timedelta(microseconds=900_000), True),
    ],
)
def test_find_window_inclusive_at_second_precision(meta_store, ns, start, end, found):
    m = meta(ns)
    meta_store.put([m])
    assert meta_store.find(query(ns, start=start, end=end)) == ([m] if found else [])


def test_find_by_type(meta_store, ns):
    cpu, heap, trace = meta(ns), meta(ns, ptype=ProfileType.HEAP), meta(ns, ptype=ProfileType.TRACE)
    meta_store.put([cpu, heap, trace])
    assert meta_store.find(query(ns, ptype=ProfileType.HEAP)) == [heap]
    assert {m.id for m in meta_store.find(query(ns))} == {cpu.id, heap.id, trace.id}


def test_signatures_are_distinct_per_type_whatever_the_type_asked(meta_store, ns):
    go_cpu = "cpu/nanoseconds:samples/count,cpu/nanoseconds"
    heap = "space/bytes:inuse_space/bytes"
    meta_store.put([meta(ns, signature=go_cpu), meta(ns, signature=go_cpu, labels="a=1"),
                    meta(ns, signature=":cpu/nanoseconds"), meta(ns, ptype=ProfileType.HEAP, signature=heap),
                    meta(ns, at=T0 + timedelta(days=3), ptype=ProfileType.MUTEX)])
    assert meta_store.signatures(query(ns, ptype=ProfileType.HEAP)) == [
        ("cpu", ":cpu/nanoseconds"), ("cpu", go_cpu), ("heap", heap)]
    assert meta_store.signatures(query(ns, labels="a=1")) == [("cpu", go_cpu)]


def test_find_by_service_exactly(meta_store, ns):
    mine, other = meta(ns), meta(ns + "x")
    meta_store.put([mine, other])
    assert meta_store.find(query(ns)) == [mine]


def test_find_labels_and_of_exact_pairs(meta_store, ns):
    a = meta(ns, labels="env=prod,region=eu")
    b = meta(ns, labels="env=prod,region=us")
    c = meta(ns, labels="env=prod2")
    meta_store.put([a, b, c])
    assert {m.id for m in meta_store.find(query(ns, labels="env=prod"))} == {a.id, b.id}
    assert [m.id for m in meta_store.find(query(ns, labels="env=prod,region=us"))] == [b.id]
    assert meta_store.find(query(ns, labels="env=prod,region=ap")) == []
    assert meta_store.find(query(ns, labels="env=pro")) == []


def test_a_label_filter_finds_traces_and_profiles_alike(meta_store, ns):
    cpu = meta(ns, labels="env=prod,host=a")
    trace = meta(ns, ptype=ProfileType.TRACE, labels="env=prod,host=a", at=T0 + timedelta(seconds=1))
    elsewhere = meta(ns, ptype=ProfileType.TRACE, labels="env=dev,host=a")
    meta_store.put([cpu, trace, elsewhere])
    assert meta_store.find(query(ns, labels="env=prod")) == [cpu, trace]
    assert meta_store.find(query(ns, labels="env=prod", ptype=ProfileType.TRACE)) == [trace]
    assert meta_store.find(query(ns, labels="host=a", ptype=ProfileType.CPU)) == [cpu]
    assert meta_store.find(query(ns, labels="env=prod", limit=1)) == [trace]
    assert [t for t, _ in meta_store.signatures(query(ns, labels="env=dev"))] == ["trace"]
    assert meta_store.label_pairs(query(ns, labels="env=prod"), 10) == [("env", "prod"), ("host", "a")]


def test_a_label_filter_keeps_each_profiles_labels_window_and_limit(meta_store, ns):
    # One series (labels are a set) whose profiles sent a repeated key in two orders.
    made = [meta(ns, at=T0 + timedelta(seconds=i), labels="k=2,k=1,a=x" if i % 2 else "a=x,k=1,k=2")
            for i in range(6)]
    other = meta(ns, labels="a=y", at=T0 + timedelta(seconds=2))
    meta_store.put([*made, other])
    assert meta_store.find(query(ns, labels="a=x")) == made
    assert [m.labels for m in meta_store.find(query(ns, labels="k=1"))] == [m.labels for m in made]
    # A short window probes each profile's labels, a long one goes through the series: the same answer.
    at = T0 + timedelta(seconds=1)
    for end, want in ((T0 + timedelta(seconds=3), made[1:4]), (at + timedelta(seconds=PROBED_WINDOW), made[1:])):
        assert meta_store.find(query(ns, labels="a=x", start=at, end=end)) == want
        assert [m.labels for m in meta_store.find(query(ns, labels="k=2", start=at, end=end))] == [m.labels for m in want]
    assert meta_store.find(query(ns, labels="a=x", limit=2)) == made[4:]
    assert meta_store.sample_totals(query(ns, labels="a=x", ptype=ProfileType.CPU)) == [
        (int(m.created_at.timestamp()), m.signature, None) for m in made]


def test_a_stored_type_this_version_does_not_know_is_left_out_with_a_warning(meta_store, ns, caplog):
    import sqlalchemy as sa

    from shared.adapters.sql import profiles

    kept = meta(ns, labels="a=1")
    newer = meta(ns, at=T0 + timedelta(seconds=1), ptype=ProfileType.HEAP, labels="a=1",
                 signature="alloc_objects/count")
    meta_store.put([kept, newer])
    stored_type = "n" + ns[-12:]  # as a newer version would write it; unique, so this test sees the first warning
    with meta_store.engine.begin() as conn:
        conn.execute(sa.update(profiles).where(profiles.c.id == newer.id).values(type=stored_type))
    with caplog.at_level("WARNING", logger="shared.adapters.meta_sql"):
        assert meta_store.find(query(ns)) == [kept]
        assert meta_store.get_many([kept.id, newer.id]) == [kept]
        assert meta_store.signatures(query(ns)) == [("cpu", "samples/count")]
    warned = [r.getMessage() for r in caplog.records if stored_type in r.getMessage()]
    assert len(warned) == 1, warned
    assert "does not know that type" in warned[0] and "left out of every answer" in warned[0]


def test_get_many_ignores_unknown_ids(meta_store, ns):
    a, b = meta(ns), meta(ns)
    meta_store.put([a, b])
    got = meta_store.get_many([b.id, new_id(), a.id, b.id])
    assert sorted(got, key=lambda m: m.id) == sorted([a, b], key=lambda m: m.id)
    assert meta_store.get_many([]) == []


def test_many_rows_at_once(meta_store, ns):
    made = [meta(ns, at=T0 + timedelta(seconds=i % 7), labels=f"i={i},even={i % 2 == 0}") for i in range(1200)]
    meta_store.put(made)
    assert len(meta_store.find(query(ns))) == 1200
    assert len(meta_store.find(query(ns, labels="even=True"))) == 600
    assert len(meta_store.get_many([m.id for m in made])) == 1200


def test_services_sorted_and_distinct(meta_store, ns):
    names = [f"{ns}-b", f"{ns}-a", f"{ns}-c", f"{ns}-a"]
    meta_store.put([meta(n) for n in names])
    got = meta_store.services()
    assert got == sorted(got)
    assert [s for s in got if s.startswith(ns)] == [f"{ns}-a", f"{ns}-b", f"{ns}-c"]


def test_ping(meta_store):
    meta_store.ping()


def test_query_validates_itself():
    with pytest.raises(BadRequest, match='"from" is after "to"'):
        query("svc", start=T0, end=T0 - timedelta(seconds=1))
    with pytest.raises(BadRequest, match='missing "service"'):
        query("")
    with pytest.raises(BadRequest, match="positive"):
        query("svc", limit=0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_url(request, tmp_path):
    """A database that `profefe migrate` never ran on."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "empty.db")
    from tests.contract.conftest import own_database_url

    return own_database_url(request, "profefe_empty_")


def test_a_database_without_the_schema_is_unavailable_and_names_migrate(unmigrated_url, ns):
    """An indexer started before `profefe migrate` finished retries instead of dead-lettering."""
    store = SqlMetaStore(unmigrated_url)
    try:
        for action in (lambda: store.put([meta(ns)]), lambda: store.find(query(ns)), store.services):
            with pytest.raises(Unavailable, match="no profefe schema yet: run `profefe migrate`"):
                action()
    finally:
        store.close()


def _cut(conn: sa.Connection) -> None:
    """End `conn`'s database connection under it, as a restarted server or a dropped network does."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        dbapi.close()
        return
    other = sa.create_engine(conn.engine.url)
    try:
        with other.begin() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": dbapi.info.backend_pid})
    finally:
        other.dispose()


def test_a_put_whose_connection_is_lost_is_unavailable_and_the_next_put_stores(meta_store, ns):
    """Lost inside the put's transaction: Unavailable (the client retries), nothing half-written,
    and the next put gets a working connection."""
    lost = meta(ns, labels="a=1")
    sa.event.listen(meta_store.engine, "begin", _cut, once=True)
    with pytest.raises(Unavailable):
        meta_store.put([lost])
    assert meta_store.find(query(ns)) == []
    kept = meta(ns, labels="a=2")
    meta_store.put([lost, kept])
    assert {m.id for m in meta_store.find(query(ns))} == {lost.id, kept.id}
    assert [m.labels for m in meta_store.get_many([lost.id])] == [Labels.parse("a=1")]
