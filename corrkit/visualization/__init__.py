"""Pictures: matches drawn side by side, the source warped onto the target."""
from .matches import draw_matches
from .warp import tps_warp

__all__ = ['draw_matches', 'tps_warp']
