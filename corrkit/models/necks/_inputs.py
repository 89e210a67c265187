"""What the shipped necks share: checking the injected sizes and finding the finest grid."""
from __future__ import annotations

from typing import Sequence


def checked_inputs(owner: str, in_channels: Sequence[int],
                   in_strides: Sequence[int]) -> tuple[list[int], list[int]]:
    """The injected ``in_channels`` and ``in_strides`` as lists, checked.

    Args:
        owner: The neck's class name, for the error message.
        in_channels: Channels of each input map.
        in_strides: Stride of each input map, in input pixels.

    Returns:
        ``(in_channels, in_strides)`` as lists of ints.

    Raises:
        ValueError: If the lists are empty, differ in length or hold a value below 1.
    """
    channels, strides = [int(c) for c in in_channels], [int(s) for s in in_strides]
    if not channels or len(channels) != len(strides) or min(channels + strides) < 1:
        raise ValueError(f'{owner} needs one positive in_channels and in_strides entry per '
                         f'input map, got in_channels={channels} and in_strides={strides}')
    return channels, strides


def finest(sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The largest ``(h, w)`` by area: the grid of the finest map."""
    return tuple(max(sizes, key=lambda hw: hw[0] * hw[1]))


def check_count(owner: str, feats: Sequence, expected: int) -> None:
    """Raise ``ValueError`` unless ``feats`` holds ``expected`` maps."""
    if len(feats) != expected:
        raise ValueError(f'{owner} expected {expected} input maps (one per in_channels entry), '
                         f'got {len(feats)}')


def upsampling_factor(owner: str, factor: int, strides: Sequence[int]) -> int:
    """``factor`` checked: an int of at least 1 that divides every stride.

    Raises:
        ValueError: Naming ``owner``, the factor and the strides.
    """
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f'{owner} upsamples by an integer factor >= 1, got {factor!r}')
    bad = [s for s in strides if s % int(factor)]
    if bad:
        raise ValueError(f'{owner} cannot upsample by {factor}: it does not divide the input '
                         f'strides {bad} (strides stay whole pixels); choose a divisor')
    return int(factor)
