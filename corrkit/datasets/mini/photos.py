"""Real photos that ship inside installed packages, and their split."""
from __future__ import annotations

#: Photo name → (package, path inside the package), for
#: :func:`corrkit.utils.fileio.package_file`. The name is the category.
PHOTOS = {
    'astronaut': ('skimage', 'data/astronaut.png'),
    'coffee': ('skimage', 'data/coffee.png'),
    'rocket': ('skimage', 'data/rocket.jpg'),
    'hubble': ('skimage', 'data/hubble_deep_field.jpg'),
    'ihc': ('skimage', 'data/ihc.png'),
    'retina': ('skimage', 'data/retina.jpg'),
    'camera': ('skimage', 'data/camera.png'),
    'coins': ('skimage', 'data/coins.png'),
    'chelsea': ('skimage', 'data/chelsea.png'),
    'grace_hopper': ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
    'motorcycle': ('skimage', 'data/motorcycle_left.png'),
}

#: Disjoint photos per split (SPair-71k's split names).
SPLIT_PHOTOS = {
    'trn': ('astronaut', 'coffee', 'rocket', 'hubble', 'ihc', 'retina'),
    'val': ('camera', 'coins'),
    'test': ('chelsea', 'grace_hopper', 'motorcycle'),
}

#: Textures used as backgrounds and occluders (never a category).
TEXTURES = {
    'brick': ('skimage', 'data/brick.png'),
    'grass': ('skimage', 'data/grass.png'),
    'gravel': ('skimage', 'data/gravel.png'),
}
