# Table A2 "Single_mean": one correlation channel, the mean of the 26-channel map;
# otherwise the flagship (rotary, augmentation).
_base_ = ['../transformatcher_spair.py']

model = dict(correlation=dict(type='MeanCorrelation'))
