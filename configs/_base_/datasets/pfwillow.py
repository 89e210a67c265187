# PF-WILLOW: 900 test pairs, 10 classes, 10 keypoints each (evaluation only; models
# are trained on PF-PASCAL). Protocol: PCK in the 240x240 resized frame with the
# box of the target keypoints (alpha_bbox-kp), averaged per pair, reported next to
# the looser variant several peers published as PF-WILLOW "bbox" (keypoints padded
# with -2 in TransforMatcher's code before taking the box), under its own name.
dataset_type = 'PFWillowDataset'
data_root = 'data/PF-WILLOW'
input_size = 240  # keep equal to model.input_size (the matcher's default)

test_pipeline = [
    dict(type='LoadPairImages'),
    dict(type='PairResize', size=input_size),
    dict(type='PackPairInputs'),
]
test_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='test', pipeline=test_pipeline),
)
test_evaluator = [
    dict(type='PCKMetric', alphas=(0.05, 0.1, 0.15), threshold='bbox-kp', average='pair',
         frame='resized', prefix='bbox-kp'),
    dict(type='PCKMetric', alphas=(0.05, 0.1, 0.15), threshold='bbox-kp-padded',
         average='pair', frame='resized', prefix='bbox-kp-padded'),
]
test_cfg = dict(type='TestLoop')
