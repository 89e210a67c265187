# The mini-dataset MobileNetV2 recipe (transformatcher_mobilenetv2_mini.py: CPU minutes on
# the data of `make mini-data` and the weights of `make weights`) with its refiner taken
# from a plugin package: `plugins/layer_weighted_refiner` registers `LayerWeightedRefiner`
# when imported. Try it: python tools/train.py configs/plugin_layer_weighted_refiner.py
_base_ = ['./transformatcher_mobilenetv2_mini.py']

custom_imports = dict(imports=['plugins.layer_weighted_refiner'], allow_failed_imports=False)

# the head's temperature (0.02) already sharpens the cosine scores: a scale of 1 starts the
# refiner at the zero-shot baseline (the mean of the layers)
model = dict(refiner=dict(_delete_=True, type='LayerWeightedRefiner', init_scale=1.0))
