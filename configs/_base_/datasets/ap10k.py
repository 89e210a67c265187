# AP-10K (Yu et al., NeurIPS 2021; 10,015 images, 54 species in 23 families, 17 keypoints)
# as the semantic-correspondence benchmark of GeoAware-SC (Zhang et al., CVPR 2024), read
# from AP-10K's own layout (annotations/ap10k-*-split1.json, data/*.jpg) by AP10KDataset.
# Instances: the three split1 files merged, one animal per image, at least 3 labelled
# keypoints; per species the last 30 instances (by image id) are test, the 20 before them
# val, the rest train. A pair needs 3 keypoints visible in both (v=1 weighs 0.5 per side).
# Settings: intra-species (every pair of a species' test instances; reported per
# species), cross-species (two species of one family; per family) and cross-family (two
# families; per family pair), capped as in ap10k_pair_caps below; training pairs are
# intra-species, at most 50 per instance of a species. This base evaluates intra-species;
# a leaf switches a setting by setting `setting` and the cap together, e.g.
#   test_dataloader = dict(dataset=dict(setting='cross-family',
#                                       max_pairs_per_category=_base_.ap10k_pair_caps[...]))
# Protocol: PCK in the original images, threshold = max side of the target's box
# (alpha_bbox) at alpha 0.01, 0.05 and 0.1 (GeoAware-SC's), averaged per pair.
dataset_type = 'AP10KDataset'
data_root = 'data/ap10k'
input_size = 240  # keep equal to model.input_size (the matcher's default)
# GeoAware-SC's most pairs per reported category, by setting: (val, test); None = all
ap10k_pair_caps = {
    'intra-species': (None, None),
    'cross-species': (400, 900),
    'cross-family': (20, 30),
}

train_pipeline = [
    dict(type='LoadPairImages'),
    dict(type='PairRandomCrop', prob=0.5, padding=20),
    dict(type='PairResize', size=input_size, keep_ratio=True),
    dict(type='PairPhotometricAugment', prob=0.2),
    dict(type='PackPairInputs'),
]
# longer side = input_size, padded: the aspect ratio is kept, as GeoAware-SC does
test_pipeline = [
    dict(type='LoadPairImages'),
    dict(type='PairResize', size=input_size, keep_ratio=True),
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
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 setting='intra-species', pairs_per_instance=50, pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 setting='intra-species',
                 max_pairs_per_category=ap10k_pair_caps['intra-species'][0],
                 pipeline=test_pipeline),
)
test_dataloader = dict(val_dataloader, dataset=dict(
    val_dataloader['dataset'], split='test',
    max_pairs_per_category=ap10k_pair_caps['intra-species'][1]))

val_evaluator = dict(type='PCKMetric', alphas=(0.01, 0.05, 0.1), threshold='bbox',
                     average='pair', frame='original')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
