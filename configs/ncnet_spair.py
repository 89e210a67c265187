# TransforMatcher's backbone, correlation and head with NC-Net's neighbourhood consensus
# (Rocco et al., NeurIPS 2018) as the refiner: three symmetric 4D convolutions (5^4
# kernels, 16-16-1 channels) between soft mutual nearest-neighbour filters. The paper's
# Table 3 compares this kind of local refinement with global match-to-match attention.
_base_ = ['./transformatcher_spair.py']

model = dict(refiner=dict(_delete_=True, type='NCNetRefiner', channels=(16, 16, 1),
                          kernel_sizes=(5, 5, 5), symmetric=True, mutual_before=True,
                          mutual_after=True))
