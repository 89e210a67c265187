# Zero-shot baseline: ImageNet MobileNetV2 hypercolumns, correlation averaged over
# layers (no trained parameters), kernel soft-argmax. Its weights are the one
# ImageNet checkpoint available offline here (see docs/get_started.md). Evaluated on
# the embedded mini dataset (python tools/make_mini_dataset.py).
_base_ = [
    './_base_/models/transformatcher_r101.py',
    './_base_/datasets/mini_spair.py',
    './_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        _delete_=True,
        type='TorchvisionHypercolumnBackbone',
        model_name='mobilenet_v2',
        # inverted-residual blocks at stride 16 and 32: 15x15 and 8x8 grids at 240x240
        taps=[f'features.{i}' for i in range(7, 18)],
        # torchvision's weights name implies pretrained; IMAGENET1K_V1 because DEFAULT
        # would be V2's file. pretrained=False (or weights=None) builds it random.
        weights='IMAGENET1K_V1',
    ),
    refiner=dict(_delete_=True, type='MeanRefiner'),
    # cosine scores lie in [0, 1]: a low temperature makes the softmax peaky
    head=dict(temperature=0.02),
)
