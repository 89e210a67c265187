"""Random streams that depend on the epoch only, so a resumed run repeats an uninterrupted one."""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from ..registry import HOOKS


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python, numpy and torch at the start of every training epoch.

    The seed is a function of the run's seed, the epoch and the rank, so the
    random augmentations of epoch ``e`` are the same whether the run got there
    without a break or was resumed from a checkpoint, and whatever happened in
    between (validation draws random numbers too). mmengine always has a run
    seed (it draws one when ``randomness.seed`` is ``None``). DataLoader workers
    follow when they are started per epoch with
    :func:`~corrkit.datasets.seed_worker_from_torch`, as the dataset configs do.

    ``configs/_base_/default_runtime.py`` enables it for every corrkit config.
    """

    priority = 'HIGHEST'

    def before_train_epoch(self, runner) -> None:
        seed = runner.seed
        if seed is None:
            return
        epoch_seed = epoch_rank_seed(seed, runner.epoch, get_rank())
        random.seed(epoch_seed)
        np.random.seed(epoch_seed % 2**32)
        torch.manual_seed(epoch_seed)


def epoch_rank_seed(seed: int, epoch: int, rank: int) -> int:
    """A seed for one epoch on one rank, distinct across epochs and ranks.

    Examples:
        >>> epoch_rank_seed(0, 1, 0) != epoch_rank_seed(0, 2, 0) != epoch_rank_seed(0, 1, 1)
        True
    """
    return (seed * 1_000_003 + epoch * 1_009 + rank) % 2**63
