# keypoint_mobilenetv2_zeroshot_ap10k.py in GeoAware-SC's AP-10K cross-family setting
# (see _base_/datasets/ap10k.py), with that setting's caps on the pairs per category.
_base_ = ['./keypoint_mobilenetv2_zeroshot_ap10k.py']

val_dataloader = dict(dataset=dict(
    setting='cross-family', max_pairs_per_category=_base_.ap10k_pair_caps['cross-family'][0]))
test_dataloader = dict(dataset=dict(
    setting='cross-family', max_pairs_per_category=_base_.ap10k_pair_caps['cross-family'][1]))
