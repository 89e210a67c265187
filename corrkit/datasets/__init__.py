"""Datasets and transforms (registries ``DATASETS`` and ``TRANSFORMS``)."""
