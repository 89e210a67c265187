# Table 1's T setting on PF-WILLOW: a model trained on PF-PASCAL, tested on PF-WILLOW
# with the keypoint box (alpha_bbox-kp) and the padded-keypoint box the paper's
# PF-WILLOW "bbox" column uses (see configs/_base_/datasets/pfwillow.py). Train with
# configs/transformatcher_pfpascal.py or ablations/transformatcher_noaug_pfpascal.py, then
#   python tools/test.py configs/ablations/transformatcher_pfpascal_to_pfwillow.py \
#       --checkpoint work_dirs/transformatcher_pfpascal
_base_ = ['../transformatcher_pfpascal.py']

test_dataloader = dict(dataset=dict(type='PFWillowDataset', data_root='data/PF-WILLOW',
                                    split='test'))
test_evaluator = [
    dict(type='PCKMetric', alphas=(0.05, 0.1, 0.15), threshold='bbox-kp', average='pair',
         frame='resized', prefix='bbox-kp'),
    dict(type='PCKMetric', alphas=(0.05, 0.1, 0.15), threshold='bbox-kp-padded',
         average='pair', frame='resized', prefix='bbox-kp-padded'),
]
