# Table 3 "Linformer": keys and values projected from 15^4 = 50625 matches to 256
# (Linformer's default k, shared by keys and values), absolute positions, no augmentation.
# num_tokens is tied to the grid: change it with model.input_size (240 -> 15^4).
_base_ = ['./transformatcher_abspos_noaug_spair.py']

model = dict(refiner=dict(
    attention=dict(type='LinformerAttention', num_tokens=15 ** 4, proj_dims=256)))
