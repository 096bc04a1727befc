import pytest
import torch

# The decoder's real shapes at 224x224, batch 1: strides 8/16/32 give 28x28 + 14x14 + 7x7 = 1029 tokens.
SHAPES = [(28, 28), (14, 14), (7, 7)]
TOKENS = sum(h * w for h, w in SHAPES)
DIM = 256


@pytest.fixture(autouse=True)
def _inference():
    torch.manual_seed(0)
    with torch.inference_mode():
        yield
