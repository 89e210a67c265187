# The zero-shot baseline as a keypoint matcher: the ImageNet MobileNetV2 hypercolumns of
# zeroshot_mobilenetv2.py, but each source keypoint's feature is compared with every
# target cell instead of building the 4D correlation. Memory grows with K * Ht * Wt, so
# the input can grow to 384x384 (24x24 and 12x12 grids; the 4D volume would hold 24^4
# scores per layer pair). No trained parameters. Evaluated on the embedded mini dataset
# (python tools/make_mini_dataset.py):
#   python tools/test.py configs/keypoint_mobilenetv2_zeroshot.py
_base_ = ['./zeroshot_mobilenetv2.py']

input_size = 384  # keep equal to model.input_size; the pipelines below use it

model = dict(
    _delete_=True,  # a KeypointMatcher takes none of the CorrelationMatcher's components
    type='KeypointMatcher',
    input_size=input_size,
    backbone=_base_.model.backbone,
    # each layer's cosine scores clamped at zero, then averaged: the baseline's
    # MultiChannelCorrelation + MeanRefiner, row by row
    clamp_negative=True,
    # nearest neighbour, refined by a soft-argmax in a window around it
    head=dict(type='WindowSoftArgmaxHead'),
    loss=dict(type='KeypointCrossEntropyLoss'),
)

# The dataset base's pipelines with PairResize at input_size, keeping each image's aspect
# ratio (longer side = input_size, padded), as the DINOv2-based matchers do (a base's
# pipelines are fixed when the base is read, so only their resize step is replaced here).
train_pipeline = [dict(t, size=input_size, keep_ratio=True) if t['type'] == 'PairResize'
                  else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, size=input_size, keep_ratio=True) if t['type'] == 'PairResize'
                 else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# Protocol: PCK in the original images (the SPair-71k authors' and the DINOv2 papers'),
# bbox threshold, per pair.
val_evaluator = dict(frame='original')
test_evaluator = dict(frame='original')
