# Table 3 "Performer": FAVOR+ attention with 64 positive orthogonal random features per
# head, absolute positions, no augmentation.
_base_ = ['./transformatcher_abspos_noaug_spair.py']

model = dict(refiner=dict(attention=dict(type='PerformerAttention', num_features=64)))
