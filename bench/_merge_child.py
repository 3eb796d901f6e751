"""One merge case of bench/pprof_bench.py, run in a fresh interpreter.

    python bench/_merge_child.py bytes|parsed LIST OUTPUT

Merges the files named in LIST: `bytes` adds the stored bytes to a Merger and writes its result
without building a Profile; `parsed` parses each into a Profile first, then writes the result.
It imports what a program doing only this needs, so its start-up is the library's, not the bench's.
Prints the merge's own wall time (JSON) for the bench to report beside the process's.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.pprof import Merger, parse, write  # noqa: E402


def main(way: str, list_file: str, output: str) -> None:
    start = time.perf_counter()
    merger = Merger()
    for path in Path(list_file).read_text().split():
        data = Path(path).read_bytes()
        merger.add(data if way == "bytes" else parse(data))
    Path(output).write_bytes(merger.write() if way == "bytes" else write(merger.result()))
    print('{"in_process_seconds": %r}' % (time.perf_counter() - start))


if __name__ == "__main__":
    main(*sys.argv[1:])
