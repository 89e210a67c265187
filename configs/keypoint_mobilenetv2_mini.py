# A trained adapter on the embedded mini dataset in a few CPU minutes: the zero-shot
# keypoint matcher of keypoint_mobilenetv2_zeroshot.py with a small AggregationNeck on
# its frozen ImageNet MobileNetV2 hypercolumns, trained with the keypoint cross-entropy
# on the adapter schedule (AdamW, cosine). The neck starts at the zero-shot behaviour
# (orthogonal projections, identity residual blocks), so training learns a correction.
#   python tools/train.py configs/keypoint_mobilenetv2_mini.py
_base_ = ['./keypoint_mobilenetv2_zeroshot.py', './_base_/schedules/adapter_adamw.py']

model = dict(
    # the adapter replaces fine-tuning, as on the foundation backbones: no backbone
    # gradients, BatchNorm statistics kept
    backbone=dict(freeze=True),
    neck=dict(
        type='AggregationNeck',
        # a small width keeps a training step cheap on a CPU (240 pairs, batch 8)
        out_channels=128,
        num_blocks=1,
        upsample=1,
    ),
)
# a tenth of GeoAware-SC's lr: at 1.25e-3 the small adapter drifted away from its
# zero-shot start within the first epoch (docs/guides/foundation_features.md)
optim_wrapper = dict(optimizer=dict(lr=1e-4))
# the mini train split is 240 pairs: 30 steps per epoch at batch 8
train_cfg = dict(max_epochs=4)
