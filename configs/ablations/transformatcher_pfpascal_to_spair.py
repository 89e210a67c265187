# Table 1's T setting on SPair-71k: a model trained on PF-PASCAL, tested on SPair-71k
# (alpha_bbox). Train with configs/transformatcher_pfpascal.py (with augmentation, the
# paper's dagger row) or ablations/transformatcher_noaug_pfpascal.py, then
#   python tools/test.py configs/ablations/transformatcher_pfpascal_to_spair.py \
#       --checkpoint work_dirs/transformatcher_pfpascal
_base_ = ['../transformatcher_pfpascal.py']

test_dataloader = dict(dataset=dict(type='SPairDataset', data_root='data/SPair-71k',
                                    split='test'))
test_evaluator = dict(type='PCKMetric', alphas=(0.05, 0.1, 0.15), threshold='bbox',
                      average='pair', frame='resized')
