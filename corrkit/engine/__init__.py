"""Runner-side pieces: hooks that mmengine's Runner calls during training and testing."""
from .checkpoint_hook import SafeCheckpointHook
from .epoch_seed_hook import EpochSeedHook

__all__ = ['EpochSeedHook', 'SafeCheckpointHook']
