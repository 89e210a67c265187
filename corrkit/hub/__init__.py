"""Named models and their published files: one place for each name, URL and checksum.

- :mod:`~corrkit.hub.model_names`: every config by its name (``corrkit.list_models``,
  ``hubconf.py``), from a clone or a wheel.
- :mod:`~corrkit.hub.model_index`: ``model-index.yml``, per name its config, weights
  (URL and SHA-256), paper and measured PCK; the only place a checksum is written.
- :mod:`~corrkit.hub.weights_cache`: an index file fetched into torch.hub's or Hugging
  Face's cache and checked.
- :mod:`~corrkit.hub.published`: what ``checkpoint='auto'`` loads for a name.
- :mod:`~corrkit.hub.offline_weights`: MobileNetV2's ImageNet weights without model hubs.

The hub sits at the bottom of the package with ``utils``: it imports nothing above
it, so ``corrkit.list_models()`` works without torch or the models. Turning the files
into a build needs the backbones and lives above them
(:func:`corrkit.apis.pretrained.pretrained_weights`,
:func:`corrkit.models.backbones.random_weights_options`).
"""
from .model_index import ModelInfo, WeightsFile, load_model_index, model_info
from .model_names import list_models, model_names
from .published import PublishedFiles, published_files
from .weights_cache import fetch_weights

__all__ = ['ModelInfo', 'PublishedFiles', 'WeightsFile', 'fetch_weights', 'list_models',
           'load_model_index', 'model_info', 'model_names', 'published_files']
