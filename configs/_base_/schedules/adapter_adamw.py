# Adapter schedule: the backbone stays frozen (freeze=True in the model config) and only
# the neck (the adapter) and any head / loss parameters train. Values are GeoAware-SC's
# post-processor training (Zhang et al., CVPR 2024; the defaults of pck_train.py in their
# public code): AdamW, lr 1.25e-3, weight decay 1e-3, one epoch over SPair-71k's trn
# split. Their default lr is constant; the cosine decay to 1e-6 below is their code's
# `cosine` option, chosen here so that short runs end at a small step. Batch size comes
# from the dataset base (they step after every pair, batch 1); validation every epoch.
# GuardedOptimWrapper refuses to step on a NaN or infinite loss (see adam_10e.py).
optim_wrapper = dict(
    type='GuardedOptimWrapper',
    nonfinite='raise',
    optimizer=dict(type='AdamW', lr=1.25e-3, weight_decay=1e-3),
    # lr 0 for the backbone as well as freeze=True: a config that unfreezes it by
    # mistake still trains the adapter only (set lr_mult > 0 to fine-tune on purpose)
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.0, decay_mult=0.0)}),
)
# per iteration over the whole run: `end` defaults to max_epochs
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True,
                        convert_to_iter_based=True)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
