"""CPU allocator tuning: freed large blocks stay in the heap for reuse."""
import platform
import subprocess
import sys

import pytest

from corrkit.apis import allocator
from corrkit.apis.allocator import tune_cpu_allocator

GLIBC = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'

# Resident memory (MB) kept after a 128 MB tensor is written and freed.
PROBE = """
import sys, torch
from corrkit.apis.allocator import tune_cpu_allocator
tuned = tune_cpu_allocator() if sys.argv[1] == '1' else False
def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2**20
before = rss_mb()
block = torch.ones(32 * 2**20)
del block
print(tuned, round(rss_mb() - before))
"""


def _kept_mb(tune: bool) -> tuple[str, int]:
    out = subprocess.run([sys.executable, '-c', PROBE, '1' if tune else '0'], check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not GLIBC, reason='mallopt exists only in glibc')
def test_tuned_allocator_keeps_freed_large_blocks():
    tuned, kept = _kept_mb(True)
    assert tuned == 'True'
    assert kept > 100  # the 128 MB block stays mapped, ready for the next step
    untuned, released = _kept_mb(False)
    assert untuned == 'False'
    assert released < 50  # glibc's default: unmapped at once


def test_tuning_is_off_by_environment_and_elsewhere_than_glibc(monkeypatch):
    monkeypatch.setenv(allocator.ENV_VAR, '0')
    assert tune_cpu_allocator() is False
    monkeypatch.delenv(allocator.ENV_VAR)
    monkeypatch.setattr(platform, 'system', lambda: 'Darwin')
    assert tune_cpu_allocator() is False
