"""Integration-test target: a Python process that runs exactly the garbage collections it is
told to, over stdin ("gc GEN COUNT" makes COUNT cycles of garbage and collects generation GEN
once; "quit" ends). Automatic collection is off so only these collections happen."""
import gc
import os
import sys

gc.disable()
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    if parts[0] == "gc":
        gen, count = int(parts[1]), int(parts[2])
        for _ in range(count):
            a = []
            a.append(a)  # a reference cycle only the collector frees
            del a
        print("collected", gc.collect(gen), flush=True)
    elif parts[0] == "quit":
        break
