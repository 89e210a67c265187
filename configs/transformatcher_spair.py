# TransforMatcher on SPair-71k: the flagship recipe (model and data).
# The training schedule is added by the training issue.
_base_ = [
    './_base_/models/transformatcher_r101.py',
    './_base_/datasets/spair.py',
    './_base_/default_runtime.py',
]
