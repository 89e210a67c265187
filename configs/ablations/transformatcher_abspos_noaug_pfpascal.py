# PF-PASCAL, learnable absolute 4D positions, no data augmentation: Table 2 row 2.
_base_ = ['../transformatcher_pfpascal.py']

model = dict(refiner=dict(position='absolute'))
train_dataloader = dict(dataset=dict(pipeline=_base_.test_pipeline))
