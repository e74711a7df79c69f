"""A process that keeps freed memory serves a 100 MB block from its heap and keeps it there
once freed (so the next one reuses its pages instead of mapping and zeroing new ones); the
user's own malloc settings, or NUCLEI_KEEP_FREED_MEMORY=0, leave malloc as it is."""

import json
import os
import subprocess
import sys

import pytest

# Allocates, touches and frees a 100 MB block; reports glibc's mallinfo2 while it is held
# (hblkhd: bytes in mmap-ed blocks) and after it is freed (fordblks: free bytes in the heap).
PROBE = """
import ctypes, json
import numpy as np
from nuclei.runtime import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
kept = keep_freed_memory()
block = np.empty(100 * 2**20, np.uint8)
block.fill(1)
mapped = libc.mallinfo2().hblkhd
del block
free_in_heap = libc.mallinfo2().fordblks
print(json.dumps({"kept": kept, "mapped": mapped, "free_in_heap": free_in_heap}))
"""
MB100 = 100 * 2**20


def probe(**environment: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "NUCLEI_KEEP"))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_large_block_comes_from_the_heap_and_stays_there_once_freed() -> None:
    kept = probe()
    assert kept["kept"] is True
    assert kept["mapped"] < MB100 <= kept["free_in_heap"]
    returned = probe(NUCLEI_KEEP_FREED_MEMORY="0")
    assert returned["kept"] is False
    assert returned["mapped"] >= MB100 > returned["free_in_heap"]  # mmap-ed, then unmapped


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_the_users_own_malloc_settings_stand() -> None:
    assert probe(MALLOC_TRIM_THRESHOLD_="1000000")["kept"] is False
    assert probe(MALLOC_MMAP_THRESHOLD_="1000000")["kept"] is False
