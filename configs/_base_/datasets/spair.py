# SPair-71k: 18 categories, 53,340 / 5,384 / 12,234 pairs (trn / val / test).
# Protocol: PCK in the 240x240 resized frame, threshold = max side of the target
# object box (alpha_bbox), averaged per pair; per-category and per-difficulty tables.
dataset_type = 'SPairDataset'
data_root = 'data/SPair-71k'
input_size = 240  # keep equal to model.input_size (the matcher's default)

train_pipeline = [
    dict(type='LoadPairImages'),
    dict(type='PairRandomCrop', prob=0.5, padding=20),
    dict(type='PairResize', size=input_size),
    dict(type='PairPhotometricAugment', prob=0.2),
    dict(type='PackPairInputs'),
]
test_pipeline = [
    dict(type='LoadPairImages'),
    dict(type='PairResize', size=input_size),
    dict(type='PackPairInputs'),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    # fresh workers each epoch, seeded from the per-epoch seed: exact resume (EpochSeedHook)
    persistent_workers=False,
    worker_init_fn=dict(type='corrkit.seed_worker_from_torch'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='trn', pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline),
)
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], split='test'))

val_evaluator = dict(type='PCKMetric', alphas=(0.05, 0.1, 0.15), threshold='bbox', average='pair',
                     frame='resized')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
