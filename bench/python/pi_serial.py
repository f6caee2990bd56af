"""Approximates pi serially, as the Python article on multiprocessing does.

Usage: python3 pi_serial.py [total_samples] [batches]
Prints one JSON line: {"name": "pi_serial", "seconds": ..., "pi": ...}.
"""

import json
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
    sizes = [n // batches] * batches
    start = time.perf_counter()
    inside = sum(sample(s) for s in sizes)
    elapsed = time.perf_counter() - start
    print(json.dumps({"name": "pi_serial", "seconds": elapsed,
                      "pi": 4 * inside / sum(sizes)}))


if __name__ == "__main__":
    main()
