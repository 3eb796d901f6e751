"""The PostgreSQL the suites use is a real server: DDL, committed and rolled-back transactions."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, func, insert, select, text

pytestmark = pytest.mark.postgres


def test_transactions_commit_and_roll_back(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    assert engine.dialect.driver == "psycopg"
    metadata = MetaData()
    profiles = Table("services_" + uuid.uuid4().hex[:12], metadata,
                     Column("id", Integer, primary_key=True),
                     Column("service", Text, nullable=False))
    rows = [{"id": 1, "service": "api"}, {"id": 2, "service": "indexer"}, {"id": 3, "service": "query"}]
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version()")).scalar_one().startswith("PostgreSQL ")
        metadata.create_all(engine)

        with engine.begin() as conn:
            conn.execute(insert(profiles), rows)
        with engine.connect() as conn:
            stored = conn.execute(select(profiles).order_by(profiles.c.id)).mappings().all()
        assert [dict(r) for r in stored] == rows

        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(insert(profiles), [{"id": 4, "service": "compactor"}])
            assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 4
            transaction.rollback()
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(profiles)).scalar_one() == 3
    finally:
        metadata.drop_all(engine)
        engine.dispose()



def test_two_migrations_of_one_new_database_at_once_both_succeed(postgres_url: str) -> None:
    """Two processes (alembic keeps global state, so not threads), as a Job and a replica would."""
    import subprocess
    import sys

    from tests.services import Database

    db = Database(postgres_url, "migrate_" + uuid.uuid4().hex[:12])
    code = "import sys; from shared.adapters.sql import migrate; migrate(sys.argv[1])"
    procs: list[subprocess.Popen] = []
    try:
        procs += [subprocess.Popen([sys.executable, "-c", code, db.url], stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-2000:]
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
            assert conn.execute(text("SELECT count(*) FROM profiles")).scalar_one() == 0
    finally:
        for p in procs:
            p.kill()
        db.drop()
