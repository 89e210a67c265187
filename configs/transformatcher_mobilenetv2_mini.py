# TransforMatcher trained on the embedded mini dataset in a few CPU minutes (make demo):
# ImageNet MobileNetV2 hypercolumns fine-tuned, the match-to-match refiner started at the
# zero-shot baseline (residual_mean) so that training learns a correction to it.
#
# Deviations from the paper's recipe, all to train in minutes on a CPU (what each was
# measured against: docs/guides/training.md, "The demo recipe"):
# - one attention block instead of six: each block costs a large share of a training step;
# - backbone lr 3e-4 (lr_mult 0.3) instead of 1e-5, BatchNorm statistics kept (norm_eval):
#   a faster fine-tune beat both a frozen backbone and a slower one;
# - 6 epochs at batch 8 (the dataset base), validation picks the best.
_base_ = ['./zeroshot_mobilenetv2.py', './_base_/schedules/adam_10e.py']

model = dict(
    backbone=dict(freeze=False, norm_eval=True),
    refiner=dict(_delete_=True, type='MatchToMatchRefiner', depth=1, residual_mean=True),
    # the plain distance keeps pulling on small errors, where the squared one fades
    loss=dict(squared=False),
)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.3)}))
train_cfg = dict(max_epochs=6)
