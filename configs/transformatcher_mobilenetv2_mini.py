# TransforMatcher trained on the embedded mini dataset in a few CPU minutes (make demo):
# ImageNet MobileNetV2 hypercolumns fine-tuned, the match-to-match refiner started at the
# zero-shot baseline (residual_mean) so that training learns a correction to it.
#
# Deviations from the paper's recipe, all for the 15-minute CPU budget, measured on the
# mini test split (PCK@0.05, bbox, per keypoint; zero-shot baseline 75.9):
# - one attention block instead of six (each block costs ~0.75 s of a 1.6 s training step
#   at batch 8; two blocks for 6 epochs reached 79.9, one block for 10 epochs 80.1);
# - backbone lr 3e-4 (lr_mult 0.3) instead of 1e-5, BatchNorm statistics kept (norm_eval):
#   a frozen backbone reached 78.5, lr_mult 0.1 80.1, lr_mult 0.3 80.3-80.5;
# - 6 epochs at batch 8 (the dataset base), validation picks the best.
# (Measured before the faster kernels of issue #6; with them the same recipe gives
# 78.5 PCK@0.05 per pair against the baseline's 74.2, see docs/get_started.md.)
_base_ = ['./zeroshot_mobilenetv2.py', './_base_/schedules/adam_10e.py']

model = dict(
    backbone=dict(freeze=False, norm_eval=True),
    refiner=dict(_delete_=True, type='MatchToMatchRefiner', depth=1, residual_mean=True),
    # the plain distance keeps pulling on small errors (measured: higher validation PCK
    # than the squared distance after each of the first five epochs)
    loss=dict(squared=False),
)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.3)}))
train_cfg = dict(max_epochs=6)
