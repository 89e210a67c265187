# The embedded mini dataset: SPair-71k format, made by tools/make_mini_dataset.py
# from photos shipped with scikit-image and matplotlib (each pair a photo and a
# random warp of it; 240 / 20 / 60 pairs, disjoint photos per split).
# Loaders, pipelines and protocol are SPair-71k's; only the folder and batch change.
_base_ = ['./spair.py']

data_root = 'data/mini-spair'

train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
test_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
