import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def small_inputs():
    """A 64x64 image batch of 2 and its two log-mel examples (every model needs multiples of 32)."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 64, 64, generator=gen), torch.randn(2, 1, 96, 64, generator=gen)
