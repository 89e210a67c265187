# The zero-shot baseline with the features upsampled instead of the correlation:
# UpsampleNeck doubles every map's grid (15x15 -> 30x30 at 240x240) before the
# correlation, and the head no longer upsamples (upsample_factor=1), so the flow has
# the baseline's 30x30 cells. Compares 2D feature upsampling with the head's 4D
# correlation upsampling at the same output resolution; no trained parameters.
_base_ = ['./zeroshot_mobilenetv2.py']

model = dict(
    neck=dict(type='UpsampleNeck', factor=2),  # 2 divides both strides (16 and 32)
    head=dict(upsample_factor=1),
)
