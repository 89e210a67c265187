"""Seeding DataLoader workers so that augmentations follow the main process's seed."""
from __future__ import annotations

import random

import numpy as np
import torch

from ..registry import FUNCTIONS


@FUNCTIONS.register_module()
def seed_worker_from_torch(worker_id: int) -> None:
    """Seed numpy and Python's ``random`` in a worker from torch's seed for that worker.

    PyTorch gives each worker the seed ``base_seed + worker_id``, with
    ``base_seed`` drawn from the main process's generator when an epoch's
    workers start; :class:`~corrkit.engine.EpochSeedHook` reseeds that generator
    per epoch. mmengine's default instead seeds every worker with a constant
    (``seed + worker_id``), so each epoch would replay the same random stream.
    With non-persistent workers and this function, augmentations differ from
    epoch to epoch and are the same in a resumed run. Use it in a config as
    ``worker_init_fn=dict(type='corrkit.seed_worker_from_torch')``.

    Args:
        worker_id: Index of the worker (unused: torch's seed already includes it).
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
