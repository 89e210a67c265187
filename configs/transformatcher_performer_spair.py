# The flagship with Performer attention (FAVOR+ random features) in place of additive
# attention in every match-to-match block, as in the paper's comparison of attentions.
_base_ = ['./transformatcher_spair.py']

model = dict(refiner=dict(attention=dict(type='PerformerAttention', num_features=64)))
