# Table A2 "Single_concat": one correlation channel from the 26 layers' features
# concatenated before the cosine; otherwise the flagship (rotary, augmentation).
_base_ = ['../transformatcher_spair.py']

model = dict(correlation=dict(type='ConcatCorrelation'))
