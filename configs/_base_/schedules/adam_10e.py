# TransforMatcher's schedule: Adam, lr 1e-3 for the matcher's own layers and 1e-5 for the
# backbone (lr_mult 0.01), batch 16 (set by the dataset base), 10 epochs, constant lr
# (no param_scheduler), validation after every epoch.
# GuardedOptimWrapper is mmengine's OptimWrapper that refuses to step on a NaN or infinite
# loss: nonfinite='raise' stops with an error, 'skip' drops the batch (max_skips=N to cap).
optim_wrapper = dict(
    type='GuardedOptimWrapper',
    nonfinite='raise',
    optimizer=dict(type='Adam', lr=1e-3),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.01)}),
)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10, val_interval=1)
