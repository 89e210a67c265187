# The keypoint-matcher zero-shot baseline of keypoint_mobilenetv2_zeroshot.py (ImageNet
# MobileNetV2 hypercolumns, each source keypoint compared with every target cell, window
# soft-argmax; no trained parameters) on GeoAware-SC's AP-10K benchmark, intra-species
# setting (see _base_/datasets/ap10k.py; AP-10K in its own layout under data/ap10k):
#   python tools/test.py configs/keypoint_mobilenetv2_zeroshot_ap10k.py
# The _cross_species and _cross_family leaves evaluate the other two settings.
_base_ = ['./_base_/datasets/ap10k.py', './_base_/default_runtime.py']

input_size = 384  # keep equal to model.input_size; the pipelines below use it

model = dict(
    type='KeypointMatcher',
    input_size=input_size,
    backbone=dict(
        type='TorchvisionHypercolumnBackbone',
        model_name='mobilenet_v2',
        taps=[f'features.{i}' for i in range(7, 18)],
        weights='IMAGENET1K_V1',
    ),
    # each layer's cosine scores clamped at zero, then averaged
    clamp_negative=True,
    head=dict(type='WindowSoftArgmaxHead'),
    loss=dict(type='KeypointCrossEntropyLoss'),
)

# the base's pipelines at input_size (a base's pipelines are fixed when it is read)
train_pipeline = [dict(t, size=input_size) if t['type'] == 'PairResize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, size=input_size) if t['type'] == 'PairResize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
