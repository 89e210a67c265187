# Zero-shot baseline: ImageNet MobileNetV2 hypercolumns, correlation averaged over
# layers (no trained parameters), kernel soft-argmax. Its weights are the one
# ImageNet checkpoint available offline here (see docs/get_started.md).
_base_ = ['./transformatcher_spair.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='TorchvisionHypercolumnBackbone',
        model_name='mobilenet_v2',
        # inverted-residual blocks at stride 16 and 32: 15x15 and 8x8 grids at 240x240
        return_nodes=[f'features.{i}' for i in range(7, 18)],
        weights='IMAGENET1K_V1',
    ),
    refiner=dict(_delete_=True, type='MeanRefiner'),
    # cosine scores lie in [0, 1]: a low temperature makes the softmax peaky
    head=dict(temperature=0.02),
)
