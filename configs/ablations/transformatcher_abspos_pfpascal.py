# PF-PASCAL, learnable absolute 4D positions, with data augmentation: Table 2 row 1.
_base_ = ['../transformatcher_pfpascal.py']

model = dict(refiner=dict(position='absolute'))
