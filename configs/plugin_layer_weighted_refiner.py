# TransforMatcher's backbone and head with a refiner from a plugin package:
# `plugins/layer_weighted_refiner` registers `LayerWeightedRefiner` when imported.
_base_ = ['./transformatcher_spair.py']

custom_imports = dict(imports=['plugins.layer_weighted_refiner'], allow_failed_imports=False)

model = dict(refiner=dict(_delete_=True, type='LayerWeightedRefiner', init_scale=50.0))
