# A tiny TransforMatcher for tests and quick experiments: timm's `test_resnet`
# (random weights), a 64x64 input (4x4 correlation grid), two attention blocks.
_base_ = ['./transformatcher_spair.py']

model = dict(
    input_size=64,
    backbone=dict(model_name='test_resnet', pretrained=False),
    refiner=dict(depth=2, num_heads=2, head_dims=4),
)
