"""Pictures of matches."""
from .matches import draw_matches

__all__ = ['draw_matches']
