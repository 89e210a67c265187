# TransforMatcher on PF-PASCAL (the paper's F setting for PF-PASCAL, and the model its
# T settings transfer to SPair-71k and PF-WILLOW; see docs/guides/training.md).
_base_ = [
    './_base_/models/transformatcher_r101.py',
    './_base_/datasets/pfpascal.py',
    './_base_/schedules/adam_10e.py',
    './_base_/default_runtime.py',
]
