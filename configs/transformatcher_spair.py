# TransforMatcher on SPair-71k: the flagship recipe.
# Data, schedule and evaluation protocol are added by the data and training issues.
_base_ = [
    './_base_/models/transformatcher_r101.py',
    './_base_/default_runtime.py',
]
