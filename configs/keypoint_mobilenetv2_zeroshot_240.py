# keypoint_mobilenetv2_zeroshot.py at the baseline's 240 px (15 x 15 and 8 x 8 grids): the
# keypoint matcher without its higher resolution, so that the resolution's effect and the
# per-keypoint matching's can be read apart (docs/guides/foundation_features.md).
_base_ = ['./keypoint_mobilenetv2_zeroshot.py']

input_size = 240
model = dict(input_size=input_size)
train_pipeline = [dict(t, size=input_size) if t['type'] == 'PairResize' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, size=input_size) if t['type'] == 'PairResize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
