"""avskit gpu-bench: the prepared GPU benchmark runs end to end (here on the CPU, in its quick mode)
and writes its tables; without CUDA it stops in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avsbench_kit.results import load_records

from helpers import run

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_quick_on_cpu(tmp_path, capsys):
    code, out, err = run(capsys, "gpu-bench", str(tmp_path), "--device", "cpu", "--quick", "--json")
    assert code == 0, err[-2000:]
    assert json.loads(out)["files"] == [str(tmp_path / name) for name in ("gpu-bench.md", "gpu-bench.json", "records.jsonl")]
    reports = json.loads((tmp_path / "gpu-bench.json").read_text())
    assert [r["group"] for r in reports] == ["zoo", "stages (Table 7)"]
    table = (tmp_path / "gpu-bench.md").read_text()
    assert "| avesformer-r18 | eager |" in table and "| avesformer-r18 | channels_last |" in table
    assert "reported" in table
    records = load_records(tmp_path / "records.jsonl")
    assert len(records) == 4 and all(r["provenance"]["device"] == "cpu" for r in records)
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 4  # one file to carry back, no shards left
    assert not (tmp_path / "records.jsonl.d").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal only happens where there is no CUDA device")
def test_gpu_bench_refuses_cuda_without_a_device_from_a_plain_checkout(tmp_path):
    """The wrapper for an uninstalled checkout (the GPU machine's case), one line, exit 2. The
    dependencies stay reachable, avskit's editable install does not: with -S no .pth file runs."""
    site_dirs = ":".join(p for p in sys.path if p.endswith("site-packages"))
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={site_dirs} exec {sys.executable} -S "$@"\n')
    python.chmod(0o755)
    proc = subprocess.run(["bash", "scripts/gpu-bench.sh", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHON": str(python)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "avskit: error: no CUDA device is available (--device cpu runs the same benchmark on the CPU)"
    assert not (tmp_path / "out").exists()
