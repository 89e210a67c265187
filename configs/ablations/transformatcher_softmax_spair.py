# Table 3 "Transformer": vanilla softmax attention in every match-to-match block, with
# absolute positions and no augmentation like the rest of Table 3. At 240x240 the 15^4
# grid needs 76 GiB of T x T scores per batch element, and the layer refuses with an
# AttentionMemoryError ("Out-Of-Memory" in the paper); raise
# model.refiner.attention.max_score_bytes or lower model.input_size to run it.
_base_ = ['./transformatcher_abspos_noaug_spair.py']

model = dict(refiner=dict(attention=dict(type='SoftmaxAttention')))
