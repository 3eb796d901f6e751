"""One merge case of bench/pprof_bench.py, run in a fresh interpreter.

    python bench/_merge_child.py bytes|parsed LIST OUTPUT

Merges the files named in LIST: `bytes` adds the stored bytes to a Merger and writes its result
without building a Profile; `parsed` parses each into a Profile first, then writes the result.
It imports what a program doing only this needs, so its start-up is the library's, not the bench's.
Prints the merge's own wall time (JSON) for the bench to report beside the process's.
"""
import os
import sys
import time

# os.path and open() rather than pathlib, whose import (re, fnmatch) would be a tenth of the run.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

from shared.pprof import Merger, parse, write  # noqa: E402


def main(way: str, list_file: str, output: str) -> None:
    start = time.perf_counter()
    merger = Merger()
    with open(list_file) as f:
        paths = f.read().split()
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        merger.add(data if way == "bytes" else parse(data))
    with open(output, "wb") as f:
        f.write(merger.write() if way == "bytes" else write(merger.result()))
    print('{"in_process_seconds": %r}' % (time.perf_counter() - start))


if __name__ == "__main__":
    main(*sys.argv[1:])
