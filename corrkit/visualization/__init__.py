"""Pictures: matches drawn side by side, the source warped onto the target, and the
nonlocality figures (matplotlib, imported when they are drawn)."""
from .matches import draw_matches
from .nonlocality import plot_difficulty_proportions, plot_nonlocality_histograms
from .warp import tps_warp

__all__ = ['draw_matches', 'plot_difficulty_proportions', 'plot_nonlocality_histograms',
           'tps_warp']
