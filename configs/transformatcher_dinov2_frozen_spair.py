# The control of configs/transformatcher_dinov2_adapter_spair.py: the same frozen
# DINOv2 ViT-S/14, refiner and schedule, but IdentityNeck (no adaptation), so the
# refiner reads the four raw maps' correlation channels. The difference between the
# two is what the learned aggregation adds.
#   python tools/train.py configs/transformatcher_dinov2_frozen_spair.py
_base_ = ['./transformatcher_dinov2_adapter_spair.py']

model = dict(neck=dict(_delete_=True, type='IdentityNeck'))
