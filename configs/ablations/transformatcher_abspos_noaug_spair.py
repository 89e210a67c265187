# SPair-71k, learnable absolute 4D positions instead of the rotary embedding, no data
# augmentation: Table 2 row 2, and the "Additive Attn." row of Table 3 (whose attention
# comparison uses absolute positions without augmentation).
_base_ = ['../transformatcher_spair.py']

model = dict(refiner=dict(position='absolute'))
train_dataloader = dict(dataset=dict(pipeline=_base_.test_pipeline))
