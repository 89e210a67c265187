# TransforMatcher on SPair-71k trained without data augmentation: Table 2 row 3 (rotary
# positions, no augmentation) and Table 1's "TransforMatcher (ours)" F setting.
_base_ = ['../transformatcher_spair.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.test_pipeline))
