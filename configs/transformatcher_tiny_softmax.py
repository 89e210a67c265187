# The tiny TransforMatcher with vanilla softmax attention: its 4^4 = 256 matches need
# T x T scores of 0.5 MiB per head. On the flagship's 15^4 grid the same attention would
# need 76 GiB and refuses to run (SoftmaxAttention.max_score_bytes).
_base_ = ['./transformatcher_tiny.py']

model = dict(refiner=dict(attention=dict(type='SoftmaxAttention')))
