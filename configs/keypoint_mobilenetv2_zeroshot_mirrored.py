# A probe of test-time pose alignment: keypoint_mobilenetv2_zeroshot.py with
# pose_alignment on, tested on the mini split with every source image mirrored
# (PairMirrorSource; the target and PCK in its original frame are untouched). The
# matcher encodes the source mirrored too and keeps, per pair, the pose whose dense
# features agree better with the target's, so it meets the pairs in their pose again.
#   python tools/test.py configs/keypoint_mobilenetv2_zeroshot_mirrored.py
#   python tools/test.py configs/keypoint_mobilenetv2_zeroshot_mirrored.py \
#       --cfg-options model.pose_alignment=False   # the same pairs without alignment
_base_ = ['./keypoint_mobilenetv2_zeroshot.py']

model = dict(pose_alignment=True)

# the source is mirrored as loaded, before any resizing (only test pairs: training
# would learn mirrored pairs as correspondences)
test_pipeline = [t for step in _base_.test_pipeline
                 for t in ([step, dict(type='PairMirrorSource')]
                           if step['type'] == 'LoadPairImages' else [step])]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
