"""The network between every daemon and Kafka, S3 and PostgreSQL, and between the clients and the
ingest-api, turns slow, narrow, resetting or silent (Toxiproxy) under the fault suite's load
(see test_faults.py), and comes back; the same audit follows. These scenarios alone run on a
stack whose every connection goes through a proxy.
"""
from __future__ import annotations

import time

import pytest

from tests.faults import harness
from tests.faults.harness import FAULT_AFTER, ROWS, assert_clean, indexer_retries, now_window, run
from tests.toxiproxy import Toxic

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.kafka, pytest.mark.s3, pytest.mark.postgres,
              pytest.mark.toxiproxy]


# Toxics on every link (Toxiproxy's names; upstream is client to server): what the row says, how
# long they stay, the toxics.
NETWORK_FAULTS = {
    "latency": ("2 s latency", 10.0, [Toxic("slow", "latency", "downstream", {"latency": 2000, "jitter": 0})]),
    # 8 KB/s each way per connection: a 20 KB upload takes 2.5 s on every hop.
    "trickle": ("bandwidth 8 KB/s", 10.0, [Toxic("narrow-up", "bandwidth", "upstream", {"rate": 8}),
                                           Toxic("narrow-down", "bandwidth", "downstream", {"rate": 8})]),
    # Half the connections are closed after their first 8 KiB from the client (inside a
    # request: every upload is larger), and half lose the first answer to a TCP reset (the
    # request was served, its answer never arrives).
    "resets": ("resets mid-request", 10.0, [
        Toxic("cut", "limit_data", "upstream", {"bytes": 8192}, toxicity=0.5),
        Toxic("reset", "reset_peer", "downstream", {"timeout": 0}, toxicity=0.5)]),
    # Everything sent is dropped and no connection is closed.
    "blackhole": ("blackhole", 20.0, [Toxic("drop-up", "timeout", "upstream", {"timeout": 0}),
                                      Toxic("drop-down", "timeout", "downstream", {"timeout": 0})]),
}


@pytest.mark.parametrize("kind", list(NETWORK_FAULTS))
def test_the_network_misbehaving(proxied_rig, kind):
    """The toxics on every link (each daemon to Kafka, S3, PostgreSQL; the clients to the
    ingest-api) after 400 acknowledgements; when they are gone, every daemon must carry on by
    itself: the clients get 200s again and everything acknowledged is indexed. The blackhole
    starts on the S3 and PostgreSQL links alone, so the indexers are caught in the middle of
    their batches while uploads still arrive, and spreads to Kafka and the clients halfway."""
    rig = proxied_rig
    what, seconds, toxics = NETWORK_FAULTS[kind]
    service = f"fault-net-{kind}"
    start, end, stamps = now_window()
    seen: dict[str, float] = {}
    loads: list[harness.Load] = []
    retries_before = indexer_retries(rig)
    stores = [link for link in rig.links if link.endswith(("-s3", "-postgres"))]
    staged = kind == "blackhole"

    def fault(load):
        loads.append(load)
        load.wait_for(FAULT_AFTER)
        first = stores if staged else rig.links
        faults = [harness.NetworkFault(rig.proxies, first, toxics, seconds).start()]
        if staged:
            time.sleep(seconds / 2)
            rest = [link for link in rig.links if link not in stores]
            faults.append(harness.NetworkFault(rig.proxies, rest, toxics, seconds / 2).start())
        for net in faults:
            net.join()
        seen["on"] = max(n.off_at for n in faults) - faults[0].on_at
        seen["off_at"] = max(n.off_at for n in faults)
        acked = {u.id for u in load.uploads if u.id}
        deadline = time.monotonic() + harness.VISIBLE_TIMEOUT
        while not acked <= set(harness.list_ids(rig.query.url, service, (start, end))):
            assert time.monotonic() < deadline, f"what was acknowledged before {what} ended was not all indexed"
            time.sleep(0.25)
        seen["indexed"] = time.monotonic() - seen["off_at"]

    links = "stores, then all" if staged else "all links"
    result = run(rig, f"{what} {seconds:g} s, {links}", service, fault, times=(start, end, stamps))
    after = [u.acked_at - seen["off_at"] for u in loads[0].uploads if u.acked_at > seen["off_at"]]
    # Every upload may have had its 200 before the toxics ended (a long fault outlasts the load).
    first = f"first 200 in {min(after):.1f} s" if after else "no upload left to acknowledge"
    ROWS[-1]["detail"] = (f"toxics on for {seen['on']:.1f} s; after: {first}, "
                          f"all acknowledged until then indexed in {seen['indexed']:.1f} s; "
                          f"indexer retries {indexer_retries(rig) - retries_before}")
    assert_clean(result)
