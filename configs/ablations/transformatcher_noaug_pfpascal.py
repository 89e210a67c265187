# PF-PASCAL, rotary positions, no data augmentation: Table 2 row 3, and the model of
# Table 1's "TransforMatcher (ours)" F (PF-PASCAL) and T (SPair-71k, PF-WILLOW) columns.
_base_ = ['../transformatcher_pfpascal.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.test_pipeline))
