# The mini-dataset TransforMatcher recipe that corrkit ships, with my refiner in place of
# the match-to-match refiner. 'corrkit::NAME.py' inherits a config corrkit ships by its
# model name (corrkit list); a path, absolute or relative to this file, works too.
_base_ = ['corrkit::transformatcher_mobilenetv2_mini.py']

# mutual_refiner/ lies one folder above this file: it is imported from there.
custom_imports = dict(imports=['mutual_refiner'], allow_failed_imports=False)

model = dict(refiner=dict(_delete_=True, type='MutualMatchRefiner'))
