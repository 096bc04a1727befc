"""The prepared GPU script runs end to end (here on the CPU, in its quick mode) and writes its tables."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avsbench_kit.results import load_records

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_bench_quick_on_cpu(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/gpu_bench.py", str(tmp_path), "--device", "cpu", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = json.loads((tmp_path / "gpu-bench.json").read_text())
    assert [r["group"] for r in reports] == ["zoo", "stages (Table 7)"]
    table = (tmp_path / "gpu-bench.md").read_text()
    assert "| avesformer-r18 | eager |" in table and "| avesformer-r18 | bf16 |" in table
    assert "reported" in table
    records = load_records(tmp_path / "records.jsonl")
    assert len(records) == 4 and all(r["provenance"]["device"] == "cpu" for r in records)
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 4  # one file to carry back, no shards left
    assert not (tmp_path / "records.jsonl.d").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal only happens where there is no CUDA device")
def test_gpu_bench_refuses_cuda_without_a_device(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/gpu_bench.py", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == "gpu_bench: error: no CUDA device is available"
    assert not (tmp_path / "out").exists()
