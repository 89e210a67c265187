"""Analyses of trained matchers (nonlocality of attention, paper Eq. 14)."""
from .nonlocality import (PairNonlocality, attention_queries_keys, conv_nonlocality,
                          dataset_nonlocality, difficulty_groups, difficulty_level,
                          grid_coordinates, level_proportions, model_nonlocality,
                          pairwise_nonlocality, refiner_attentions, uniform_nonlocality)

__all__ = ['PairNonlocality', 'attention_queries_keys', 'conv_nonlocality',
           'dataset_nonlocality', 'difficulty_groups', 'difficulty_level', 'grid_coordinates',
           'level_proportions', 'model_nonlocality', 'pairwise_nonlocality',
           'refiner_attentions', 'uniform_nonlocality']
