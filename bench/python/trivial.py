"""Measures multiprocessing.Pool's own costs with a trivial function.

Usage: python3 trivial.py [map_items] [apply_calls] [async_tasks] [processes]
Prints one JSON line with:
  map_seconds        Pool.map of range(map_items), default chunksize
  apply_p50_ns, apply_p99_ns
                     round trip of Pool.apply, one call after the other
  apply_async_tasks_per_s
                     async_tasks apply_async calls submitted at once, then
                     every .get()
"""

import json
import multiprocessing
import sys
import time


def trivial(x):
    return x * 2 + 1


def main():
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    tasks = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    procs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    with multiprocessing.Pool(procs) as pool:
        pool.map(trivial, range(procs), chunksize=1)  # workers up

        start = time.perf_counter()
        out = pool.map(trivial, range(items))
        map_s = time.perf_counter() - start
        assert out[-1] == 2 * (items - 1) + 1

        lat = []
        for i in range(calls):
            t0 = time.perf_counter_ns()
            r = pool.apply(trivial, (i,))
            lat.append(time.perf_counter_ns() - t0)
            assert r == 2 * i + 1
        lat.sort()

        start = time.perf_counter()
        rs = [pool.apply_async(trivial, (i,)) for i in range(tasks)]
        for i, r in enumerate(rs):
            assert r.get() == 2 * i + 1
        async_s = time.perf_counter() - start

    print(json.dumps({
        "name": "trivial", "processes": procs, "items": items,
        "start_method": multiprocessing.get_start_method(),
        "map_seconds": map_s,
        "apply_calls": calls,
        "apply_p50_ns": lat[len(lat) // 2],
        "apply_p99_ns": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "async_tasks": tasks,
        "apply_async_tasks_per_s": tasks / async_s,
    }))


if __name__ == "__main__":
    main()
