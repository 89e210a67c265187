# The zero-shot baseline with a plain soft-argmax head instead of the kernel
# soft-argmax: shows what the Gaussian around the argmax contributes.
_base_ = ['./zeroshot_mobilenetv2.py']

model = dict(head=dict(_delete_=True, type='SoftArgmaxHead', upsample_factor=2, temperature=0.02))
