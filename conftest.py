"""Makes ``torch`` available to every docstring example run by pytest."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _doctest_torch(doctest_namespace):
    doctest_namespace['torch'] = torch
