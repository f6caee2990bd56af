"""Approximates pi with multiprocessing.Pool, as the Python article does.

Usage: python3 pi_pool.py [total_samples] [batches] [processes]
Prints one JSON line with the pool's start-up time and the time of the map
(start-up excluded), as the article reports them.
"""

import json
import multiprocessing
import os
import random
import sys
import time


def sample(num_samples):
    inside = 0
    for _ in range(num_samples):
        x, y = random.random(), random.random()
        if x * x + y * y <= 1:
            inside += 1
    return inside


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    procs = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
    sizes = [n // batches] * batches
    start = time.perf_counter()
    with multiprocessing.Pool(procs) as pool:
        # Wait until every worker has started, as cluster.New does.
        pool.map(int, range(procs), chunksize=1)
        startup = time.perf_counter() - start
        start = time.perf_counter()
        inside = sum(pool.map(sample, sizes))
        elapsed = time.perf_counter() - start
    print(json.dumps({"name": "pi_pool", "processes": procs,
                      "start_method": multiprocessing.get_start_method(),
                      "startup_seconds": startup, "seconds": elapsed,
                      "pi": 4 * inside / sum(sizes)}))


if __name__ == "__main__":
    main()
