# The zero-shot baseline of zeroshot_mobilenetv2.py (ImageNet MobileNetV2 hypercolumns,
# correlation averaged over layers, kernel soft-argmax; no trained parameters) on
# GeoAware-SC's AP-10K benchmark, intra-species setting (see _base_/datasets/ap10k.py;
# AP-10K in its own layout under data/ap10k):
#   python tools/test.py configs/zeroshot_mobilenetv2_ap10k.py
_base_ = [
    './_base_/models/transformatcher_r101.py',
    './_base_/datasets/ap10k.py',
    './_base_/default_runtime.py',
]

# the model of zeroshot_mobilenetv2.py (a leaf cannot share it with a second dataset base)
model = dict(
    backbone=dict(
        _delete_=True,
        type='TorchvisionHypercolumnBackbone',
        model_name='mobilenet_v2',
        # inverted-residual blocks at stride 16 and 32: 15x15 and 8x8 grids at 240x240
        taps=[f'features.{i}' for i in range(7, 18)],
        weights='IMAGENET1K_V1',
    ),
    refiner=dict(_delete_=True, type='MeanRefiner'),
    # cosine scores lie in [0, 1]: a low temperature makes the softmax peaky
    head=dict(temperature=0.02),
)
