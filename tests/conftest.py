import os

# Two cores: under pytest-xdist each of the two workers takes one thread (two each would fight over
# the cores); a plain run takes both. The processes a test starts (submitit's local jobs, DDP, the
# CLI in a subprocess) inherit one thread too, or they fight the other worker over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("AVSKIT_BUILD_CACHE", "4")  # a model built again from the same RNG state is copied (avsbench_kit.zoo)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture
def small_inputs():
    """A 64x64 image batch of 2 and its two log-mel examples (every model needs multiples of 32)."""
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 64, 64, generator=gen), torch.randn(2, 1, 96, 64, generator=gen)


BIG_FILE = 50_000_000  # bytes: the whole-model weight files the released-format tests write (0.3-0.75 GB each)


@pytest.fixture(autouse=True)
def _drop_big_files(request):
    """Delete a test's big files when it ends: pytest keeps the last three runs' tmp folders, and the
    weight files of one run alone would otherwise hold about 10 GB of disk."""
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None  # set up first, torn down after
    yield
    if folder is not None:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size > BIG_FILE:
                path.unlink()
