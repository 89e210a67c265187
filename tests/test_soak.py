"""Soak: match_pair on 200 random pairs of random sizes and modes, memory flat.

Slow (about a minute): run with ``pytest -m slow tests/test_soak.py``.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis import match_pair

MODES = ('RGB', 'L', 'P', 'RGBA', 'I;16', 'CMYK')


def resident_mb():
    with open('/proc/self/statm') as handle:
        return int(handle.read().split()[1]) * 4096 / 2 ** 20


def random_image(rng, side=None):
    """A random image of a random size (8 to 1500 pixels a side) and mode, as PIL or array."""
    h, w = (side, side) if side else rng.integers(8, 1500, size=2)
    mode = MODES[rng.integers(len(MODES))]
    pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    if mode == 'I;16':
        return Image.fromarray((pixels[..., 0].astype(np.uint16) * 257))
    if rng.random() < 0.3 and mode in ('RGB', 'L'):  # arrays too, uint8 or float
        array = pixels if mode == 'RGB' else pixels[..., 0]
        return array if rng.random() < 0.5 else array / 255.0
    return Image.fromarray(pixels).convert(mode)


@pytest.mark.slow
def test_two_hundred_random_pairs_leave_memory_flat(tiny_matcher):
    rng = np.random.default_rng(0)
    for _ in range(10):  # warm-up, with the largest size first
        match_pair(tiny_matcher, random_image(rng, 1500), random_image(rng, 1500))
        match_pair(tiny_matcher, random_image(rng), random_image(rng))
    before = resident_mb()
    for _ in range(200):
        kps = rng.uniform(0, 8, size=(int(rng.integers(1, 30)), 2))
        result = match_pair(tiny_matcher, random_image(rng), random_image(rng), kps)
        assert torch.isfinite(result.trg_kps).all() and len(result.trg_kps) == len(kps)
    growth = resident_mb() / before - 1
    print(f'resident memory {before:.0f} MB after warm-up, growth {growth:+.1%} over 200 pairs')
    assert growth < 0.10
