"""`profefe serve`'s compactor gives back the disk of uploads that retention deleted, also where
they share pack files with uploads of a service kept longer."""
from __future__ import annotations

import time
from pathlib import Path

from services import wiring
from services.compactor.config import CompactorConfig
from services.roles import ServeRole
from shared import pprof
from shared.adapters import blob_packs
from shared.errors import InsufficientStorage

FIXTURE = (Path(__file__).resolve().parents[1] / "testdata" / "cpu-1.pb.gz").read_bytes()
DAY = 86400


def profile_at(at: float) -> bytes:
    p = pprof.parse(FIXTURE)
    p.time_nanos = int(at * 1e9)
    return pprof.write(p)


def packs(cfg: ServeRole) -> list[Path]:
    return sorted((cfg.blob_dir / blob_packs.FOLDER).glob(f"*{blob_packs.SUFFIX}"))


def test_a_pass_frees_the_packs_retention_left_mostly_dead(tmp_path, monkeypatch):
    monkeypatch.setattr(blob_packs, "PACK_BYTES", 40_000)  # a few uploads a pack
    cfg = ServeRole(data_dir=tmp_path, compactor=CompactorConfig(
        raw_retention=DAY, raw_retention_for=(("kept", 30 * DAY),)))
    ports = wiring.open_embedded(cfg)
    try:
        client = wiring.embedded_app(ports, cfg).test_client()
        old = time.time() - 3 * DAY
        for n in range(24):  # one upload of "kept" among every four: each pack holds one
            service = "kept" if n % 4 == 0 else "brief"
            r = client.post(f"/api/0/profiles?service={service}&type=cpu&labels=n={n}", data=profile_at(old + n))
            assert r.status_code == 200, r.get_data()
        before = packs(cfg)
        assert len(before) >= 4
        used = sum(p.stat().st_size for p in before)

        compactor = wiring.embedded_compactor(ports, cfg)
        report = compactor.run_pass()
        assert report.raw_pruned == 18
        compactor.after_pass()

        after = packs(cfg)
        assert not set(before[:-1]) & set(after)  # every sealed pack was copied away
        assert sum(p.stat().st_size for p in after) < used / 2
        kept = client.get(f"/api/0/profiles?service=kept&type=cpu&from={_ts(old - 60)}&to={_ts(old + 60)}")
        ids = [m["id"] for m in kept.get_json()["body"]]
        assert len(ids) == 6
        for pid in ids:
            r = client.get(f"/api/0/profiles/{pid}")
            assert r.status_code == 200 and pprof.parse(r.get_data()).time_nanos // 10**9 >= int(old)
    finally:
        ports.close()


def test_a_reclaim_that_fails_is_logged_and_the_pass_goes_on(tmp_path, monkeypatch, caplog):
    cfg = ServeRole(data_dir=tmp_path)
    ports = wiring.open_embedded(cfg)
    try:
        def full(*_args):
            raise InsufficientStorage("the disk is full")

        monkeypatch.setattr(ports.blobs, "reclaim", full)
        wiring.embedded_compactor(ports, cfg).after_pass()
        assert "reclaiming pack space failed: the disk is full" in caplog.text
    finally:
        ports.close()


def _ts(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
