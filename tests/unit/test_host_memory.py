"""release_free_memory hands the C heap's free pages back: resident memory drops after a fragmented free."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# In a fresh interpreter, so nothing else in the test session shapes its heap. 100 KB blocks sit below glibc's
# mmap threshold, so they come from the heap; the last one stays allocated and pins the heap's top, so a plain
# free() cannot give the pages back and only a trim can.
PROGRAM = textwrap.dedent("""
    import sys
    from lightwire.services.trainer.host_memory import release_free_memory

    def rss_mb():
        return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024

    blocks = [bytearray(100_000) for _ in range(3000)]
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])
    pinned = blocks.pop()
    del blocks
    freed = rss_mb()
    trimmed = release_free_memory()
    print(freed, rss_mb(), trimmed)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_returns_freed_heap_pages_to_the_system():
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True).stdout.split()
    freed, after, trimmed = float(out[0]), float(out[1]), out[2]
    assert trimmed == "True"
    assert freed > 250, f"the blocks were not resident: {freed:.0f} MB"
    assert after < freed - 200, f"resident {freed:.0f} MB before the trim, {after:.0f} MB after"
