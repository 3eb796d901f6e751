"""The group-commit writer: uploads that wait together share one write, each gets its own outcome."""
from __future__ import annotations

import threading

import pytest

from services.embedded.group_commit import GroupCommit
from shared.errors import Unavailable


class Recorder:
    """A `write` that remembers its batches, refuses items named "bad", and can be held shut."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.holding: list[str] = []  # the items of the write in progress

    def __call__(self, items):
        self.holding = list(items)
        self.entered.set()
        self.gate.wait(10)
        if "bad" in items:
            raise ValueError(f"refused a batch of {len(items)}")
        self.batches.append(list(items))


def submit_all(writer, items):
    """Submit each item from its own thread; returns item -> the exception it raised, or None."""
    outcomes: dict[str, BaseException | None] = {}

    def one(item):
        try:
            writer.submit(item)
            outcomes[item] = None
        except BaseException as exc:  # noqa: BLE001
            outcomes[item] = exc

    threads = [threading.Thread(target=one, args=(item,)) for item in items]
    for t in threads:
        t.start()
    return threads, outcomes


def wait_queued(writer, n):
    """Until `n` items wait in the writer's queue (the writer thread is held in a write)."""
    for _ in range(1000):
        if writer._queue.qsize() >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{n} items never queued")


def wait_until(condition, what):
    for _ in range(1000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never: {what}")


def test_a_single_submit_is_written_before_it_returns():
    write = Recorder()
    writer = GroupCommit(write)
    writer.submit("a")
    assert write.batches == [["a"]]
    writer.close()


def test_items_that_wait_together_are_written_in_one_batch():
    write = Recorder()
    writer = GroupCommit(write)
    write.gate.clear()
    first, _ = submit_all(writer, ["first"])
    assert write.entered.wait(5)
    threads, outcomes = submit_all(writer, [f"r{i}" for i in range(10)])
    wait_queued(writer, 10)
    write.gate.set()
    for t in first + threads:
        t.join(5)
    assert write.batches[0] == ["first"]
    assert sorted(write.batches[1]) == sorted(f"r{i}" for i in range(10))
    assert all(v is None for v in outcomes.values())
    writer.close()


def test_batches_are_cut_at_max_batch():
    write = Recorder()
    writer = GroupCommit(write, max_batch=3)
    write.gate.clear()
    first, _ = submit_all(writer, ["first"])
    assert write.entered.wait(5)
    threads, _ = submit_all(writer, [f"r{i}" for i in range(7)])
    wait_queued(writer, 7)
    write.gate.set()
    for t in first + threads:
        t.join(5)
    assert [len(b) for b in write.batches] == [1, 3, 3, 1]
    writer.close()


def test_a_bad_item_fails_alone_and_its_batch_mates_are_written():
    write = Recorder()
    writer = GroupCommit(write)
    write.gate.clear()
    first, _ = submit_all(writer, ["first"])
    assert write.entered.wait(5)
    threads, outcomes = submit_all(writer, ["x", "bad", "y"])
    wait_queued(writer, 3)
    write.gate.set()
    for t in first + threads:
        t.join(5)
    assert isinstance(outcomes["bad"], ValueError)
    assert str(outcomes["bad"]) == "refused a batch of 1"
    assert outcomes["x"] is None and outcomes["y"] is None
    assert sorted(item for b in write.batches[1:] for item in b) == ["x", "y"]
    writer.close()


def test_close_writes_what_is_queued_then_refuses_new_items():
    write = Recorder()
    writer = GroupCommit(write)
    write.gate.clear()
    threads, outcomes = submit_all(writer, ["a", "b", "c"])
    assert write.entered.wait(5)
    # All three submitted: in the held write (which may have taken more than one) or behind it.
    wait_until(lambda: len(write.holding) + writer._queue.qsize() >= 3, "all three submitted")
    closer = threading.Thread(target=writer.close)
    closer.start()
    write.gate.set()
    closer.join(5)
    for t in threads:
        t.join(5)
    assert sorted(item for b in write.batches for item in b) == ["a", "b", "c"]
    assert all(v is None for v in outcomes.values())
    assert not writer._thread.is_alive()
    with pytest.raises(Unavailable, match="stopping"):
        writer.submit("late")


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), max_batch=0)


def test_write_now_writes_one_batch_on_the_callers_thread_and_tells_each_item():
    write = Recorder()
    writer = GroupCommit(write)
    told: list[tuple[str, BaseException | None, str]] = []

    def then(item):
        return lambda error: told.append((item, error, threading.current_thread().name))

    writer.write_now([(item, then(item)) for item in ("x", "bad", "y")])
    here = threading.current_thread().name
    assert [(item, error is None, name) for item, error, name in told] == [
        ("x", True, here), ("bad", False, here), ("y", True, here)]
    assert isinstance(told[1][1], ValueError)
    # The batch failed as a whole, so it was written again one item at a time.
    assert write.batches == [["x"], ["y"]]
    writer.write_now([("z", then("z"))])
    assert write.batches[-1] == ["z"]
    writer.close()
    with pytest.raises(Unavailable, match="stopping"):
        writer.write_now([("late", then("late"))])
    assert [item for item, _, _ in told] == ["x", "bad", "y", "z"]


def test_write_now_waits_for_the_writer_threads_batch():
    write = Recorder()
    writer = GroupCommit(write)
    write.gate.clear()
    threads, outcomes = submit_all(writer, ["queued"])
    assert write.entered.wait(5)  # the writer thread is in its write, held
    told = []
    now = threading.Thread(target=writer.write_now, args=([("mine", told.append)],))
    now.start()
    now.join(0.2)
    assert now.is_alive() and write.batches == []  # never two writes at once
    write.gate.set()
    now.join(5)
    for t in threads:
        t.join(5)
    assert write.batches == [["queued"], ["mine"]] and told == [None] and outcomes == {"queued": None}
    writer.close()


def test_a_callback_that_raises_does_not_keep_its_batch_mates_from_theirs():
    writer = GroupCommit(Recorder())
    told = []

    def boom(_error):
        raise RuntimeError("a caller's bug")

    writer.write_now([("a", boom), ("b", told.append)])
    assert told == [None]
    writer.close()
