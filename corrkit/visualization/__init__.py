"""Pictures: matches drawn side by side, the source warped onto the target, the
nonlocality figures (matplotlib, imported when they are drawn), and an interactive HTML
match viewer with a heat map per source grid point; the review gallery of a keypoint
transfer run."""
from .display import display_points, shrink, side_by_side
from .gallery import GalleryItem, write_gallery
from .matches import draw_matches
from .nonlocality import plot_difficulty_proportions, plot_nonlocality_histograms
from .viewer import write_match_viewer
from .warp import tps_warp

__all__ = ['display_points', 'draw_matches', 'GalleryItem', 'shrink', 'side_by_side',
           'plot_difficulty_proportions', 'plot_nonlocality_histograms', 'tps_warp',
           'write_gallery', 'write_match_viewer']
