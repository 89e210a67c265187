# keypoint_mobilenetv2_zeroshot.py with a soft-argmax over all target cells instead of a
# window around the nearest neighbour: a distant second peak pulls the prediction.
_base_ = ['./keypoint_mobilenetv2_zeroshot.py']

model = dict(head=dict(_delete_=True, type='SoftArgmaxKeypointHead', temperature=0.02))
