"""Request lines written behind the request threads: every line arrives, in each thread's order,
once the handler is closed (as `logging.shutdown` does at exit), in a forked child too."""
from __future__ import annotations

import io
import json
import logging
import os
import threading

from services.process.logs import Behind, JsonFormatter


def _logger(name: str, out: io.StringIO) -> tuple[logging.Logger, Behind]:
    target = logging.StreamHandler(out)
    target.setFormatter(JsonFormatter())
    handler = Behind(target)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def test_every_line_of_many_threads_is_written_by_close_in_each_threads_order():
    out = io.StringIO()
    logger, handler = _logger("test.logs.threads", out)

    def emit(t: int) -> None:
        for i in range(300):
            logger.info("request", extra={"fields": {"thread": t, "n": i}})

    threads = [threading.Thread(target=emit, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handler.close()

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 8 * 300
    for t in range(8):
        assert [x["n"] for x in lines if x["thread"] == t] == list(range(300))
    assert {x["logger"] for x in lines} == {"test.logs.threads"} and {x["msg"] for x in lines} == {"request"}
    handler.close()  # a second close (logging.shutdown after an explicit one) is harmless


def test_a_forked_child_writes_its_lines_with_a_writer_of_its_own():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its parent's writer thread is gone
        code = 1
        try:
            with os.fdopen(write, "w") as pipe:
                target = logging.StreamHandler(pipe)
                target.setFormatter(JsonFormatter())
                handler = Behind(target)
                child = os.fork()
                if child == 0:
                    logger = logging.getLogger("test.logs.grandchild")
                    logger.handlers[:] = [handler]
                    logger.propagate = False
                    logger.warning("from the forked one")
                    handler.close()
                    os._exit(0)
                _, status = os.waitpid(child, 0)
                handler.close()
                code = os.waitstatus_to_exitcode(status)
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        got = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [json.loads(line)["msg"] for line in got.splitlines()] == ["from the forked one"]


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def test_a_burst_of_lines_is_written_in_a_few_writes_not_one_a_line():
    """The writer wakes once per `linger`, not once per line: each wake takes the GIL from the
    thread that stores the uploads."""
    out = _CountingStream()
    target = logging.StreamHandler(out)
    target.setFormatter(JsonFormatter())
    handler = Behind(target, linger=0.2)
    logger = logging.getLogger("test.logs.burst")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for i in range(500):
        logger.info("request", extra={"fields": {"n": i}})
    handler.close()
    assert [json.loads(line)["n"] for line in out.getvalue().splitlines()] == list(range(500))
    assert out.writes <= 3, out.writes
