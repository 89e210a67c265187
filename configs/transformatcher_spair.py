# TransforMatcher on SPair-71k: the flagship recipe (model, data, schedule, runtime).
#   python tools/train.py configs/transformatcher_spair.py
_base_ = [
    './_base_/models/transformatcher_r101.py',
    './_base_/datasets/spair.py',
    './_base_/schedules/adam_10e.py',
    './_base_/default_runtime.py',
]
