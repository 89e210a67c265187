# keypoint_mobilenetv2_zeroshot.py with the bare nearest neighbour: the centre of the most
# similar target cell, no sub-cell refinement (the window soft-argmax's starting point).
_base_ = ['./keypoint_mobilenetv2_zeroshot.py']

model = dict(head=dict(_delete_=True, type='NearestNeighbourHead'))
