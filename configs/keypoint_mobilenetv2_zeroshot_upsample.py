# keypoint_mobilenetv2_zeroshot.py with every map upsampled x2 by UpsampleNeck before the
# similarity (24x24 -> 48x48 target cells at 384 px): the window soft-argmax then reads a
# finer similarity map. No trained parameters; the untrained adapter of
# keypoint_mobilenetv2_mini.py starts from (almost exactly) this matcher.
_base_ = ['./keypoint_mobilenetv2_zeroshot.py']

model = dict(neck=dict(type='UpsampleNeck', factor=2))  # 2 divides both strides (16, 32)
