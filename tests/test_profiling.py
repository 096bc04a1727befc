"""Profiling: FLOPs against hand counts, latency statistics, the module breakdown, the record store."""

import json

import pytest
import torch
from torch import nn

from avsbench_kit import build_model
from avsbench_kit.nn.attention import MultiHeadAttention
from avsbench_kit.profiling.breakdown import module_breakdown, module_tree
from avsbench_kit.profiling.flops import count_flops
from avsbench_kit.profiling.timing import LatencyStats, interleaved_latency
from avsbench_kit.results import TornRecordsWarning, append_records, load_records, own_shard


class Wrap(nn.Module):
    """fvcore traces model(*inputs); this adapts single-input modules."""

    def __init__(self, module, kv=None):
        super().__init__()
        self.module, self.kv = module, kv

    def forward(self, x):
        return self.module(x, self.kv, self.kv) if self.kv is not None else self.module(x)


def test_attention_block_flops_by_hand():
    dim, heads, lq, lk = 64, 8, 10, 7
    attn = MultiHeadAttention(dim, heads)
    kv = torch.randn(1, lk, dim)
    flops = count_flops(Wrap(attn, kv), (torch.randn(1, lq, dim),))
    projections = lq * dim * dim + 2 * lk * dim * dim + lq * dim * dim  # q, k, v, out
    attention = lq * lk * dim + lq * lk * dim  # q k^T and the weighted sum of v, over all heads
    assert flops.total == projections + attention
    assert flops.by_operator["scaled_dot_product_attention"] == attention


def test_convolution_flops_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    flops = count_flops(Wrap(conv), (torch.randn(2, 3, 16, 16),))
    assert flops.total == 2 * 8 * 3 * 9 * 16 * 16
    assert flops.uncounted == {}


def test_uncounted_operators_are_listed():
    model = Wrap(nn.Sequential(nn.Linear(4, 4), nn.GELU()))
    flops = count_flops(model, (torch.randn(3, 4),))
    assert flops.total == 3 * 4 * 4
    assert flops.uncounted == {"aten::gelu": 1}


def test_zoo_model_flops_cover_attention_and_deformable_sampling():
    model = build_model("avesformer-r18")
    flops = count_flops(model, (torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64)))
    assert flops.by_operator["scaled_dot_product_attention"] > 0
    assert flops.by_operator["grid_sampler"] > 0
    assert flops.total == sum(flops.by_module[p] for p in model.parts)
    assert "aten::scaled_dot_product_attention" not in flops.uncounted


def test_latency_statistics():
    stats = LatencyStats.from_samples([10.0, 11.0, 12.0, 13.0, 100.0])
    assert stats.median == 12.0 and stats.n == 5
    assert stats.iqr == pytest.approx(2.0)
    assert stats.p90 == pytest.approx(65.2)
    assert stats.noisy  # IQR / median = 2 / 12 > 10%
    assert not LatencyStats.from_samples([10.0, 10.1, 10.2, 10.3]).noisy


def test_interleaved_rounds_alternate():
    calls = []
    stats = interleaved_latency([lambda: calls.append("a"), lambda: calls.append("b")], torch.device("cpu"), warmup=1, iters=3)
    assert calls == ["a", "b"] * 4
    assert [s.n for s in stats] == [3, 3]


def test_module_tree_is_transparent_to_containers():
    model = build_model("avesformer-r18")
    paths = [p for p, _, d in module_tree(model, 2)]
    assert paths[:1] == ["audio_backbone"]
    assert {"decoder.stages.0", "decoder.stages.1", "decoder.stages.2"} <= set(paths)
    assert "decoder.stages" not in paths


def test_breakdown_covers_the_forward():
    model = build_model("avesformer-r18")
    image, audio = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64)
    with torch.inference_mode():
        result = module_breakdown(model, lambda: model(image, audio), torch.device("cpu"), depth=2, iters=3, warmup=1)
    rows = result.rows
    parts = [r for r in rows if r.depth == 1]
    assert [r.name for r in parts] == list(model.parts)
    assert 0.9 < result.coverage <= 1.0  # measured in the same passes: the parts lie inside the forward
    fusion = next(r for r in rows if r.name == "fusion")
    assert fusion.depth == 0 and fusion.params == sum(p.numel() for s in model.decoder.stages[1:]
                                                  for layer in s.layers for p in layer.fusion.parameters())
    # a stage's time is at most its decoder's
    decoder = next(r for r in rows if r.name == "decoder")
    assert sum(r.latency_ms for r in rows if r.name.startswith("decoder.stages.")) <= decoder.latency_ms * 1.05


def test_records_append_and_survive_a_torn_line(tmp_path):
    store = tmp_path / "records.jsonl"
    append_records([{"a": 1}], store)
    shard = own_shard(store)
    with open(shard, "a") as f:
        f.write('{"torn": ')  # this process's writer killed mid-line
    append_records([{"b": 2}], store)
    with pytest.warns(TornRecordsWarning, match="skipped 1 torn line"):
        assert load_records(store) == [{"a": 1}, {"b": 2}]
    lines = shard.read_text().splitlines()
    assert json.loads(lines[0]) == {"a": 1} and lines[1] == '{"torn": ' and json.loads(lines[2]) == {"b": 2}
    assert not store.exists()  # the file itself is only written whole (a report, an export)


def test_store_file_and_shards_merge_in_time_order(tmp_path):
    store = tmp_path / "records.jsonl"
    store.write_text(json.dumps({"n": 1, "provenance": {"time": "2026-01-01T00:00:00+00:00"}}) + "\n")
    (tmp_path / "records.jsonl.d").mkdir()
    (tmp_path / "records.jsonl.d" / "other-1.jsonl").write_text(
        json.dumps({"n": 3, "provenance": {"time": "2026-01-03T00:00:00+00:00"}}) + "\n")
    append_records([{"n": 2, "provenance": {"time": "2026-01-02T00:00:00+00:00"}}], store)
    assert [r["n"] for r in load_records(store)] == [1, 2, 3]


def test_container_parts_are_timed_through_their_members():
    model = build_model("avsbench-r50")  # stage_convs and tpavi are ModuleLists, never called themselves
    image, audio = torch.randn(1, 3, 64, 64), torch.randn(1, 1, 96, 64)
    with torch.inference_mode():
        result = module_breakdown(model, lambda: model(image, audio), torch.device("cpu"), depth=1, iters=3, warmup=1)
    times = {r.name: r.latency_ms for r in result.rows}
    assert times["stage_convs"] > 0 and times["tpavi"] > 0
    assert times["fusion (TPAVI)"] == pytest.approx(times["tpavi"])
    assert 0.9 < result.coverage <= 1.0


def test_the_peak_is_measured_once_per_setting():
    from avsbench_kit.profiling.peak import _measured_peak, peak_matmul_gflops

    cpu = torch.device("cpu")
    first = peak_matmul_gflops(cpu, torch.float32, n=64, iters=2)
    hits = _measured_peak.cache_info().hits
    first["peak"] = -1.0  # a caller's copy: changing it changes nothing shared
    again = peak_matmul_gflops(cpu, torch.float32, n=64, iters=2)
    assert _measured_peak.cache_info().hits == hits + 1 and again["peak"] > 0
    assert again["peak"] == max(again["matmul"], again["conv1x1"])
    peak_matmul_gflops(cpu, torch.float32, n=96, iters=2)  # another size is measured anew
    assert _measured_peak.cache_info().hits == hits + 1


def test_avskit_flushes_subnormals_in_every_cpu_thread():
    """avskit's start-up flushes subnormal floats to zero before torch starts its worker threads, so
    the workers inherit it: a product of 1e-20 and 1e-20 (1e-40) reads 0 in every element of a tensor
    that two threads compute. Without the flush (the control, and AVSKIT_KEEP_DENORMALS=1) the same
    products stay subnormal: the check can fail."""
    import os
    import subprocess
    import sys

    count = ("import torch; torch.set_num_threads(2); y = torch.full((1 << 20,), 1e-20) * 1e-20; "
             "from avsbench_kit.profiling.env import environment; "
             "print(int((y != 0).sum()), environment(torch.device('cpu'))['denormals'])")
    startup = "import avskit.cli, contextlib, io; contextlib.redirect_stdout(io.StringIO()).__enter__(); avskit.cli.main(['--help']); "

    def run(code: str, **env: str) -> list[str]:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert run(count) == [str(1 << 20), "kept"]  # torch's default: subnormals kept, in both threads' halves
    assert run(startup + "import sys; sys.stdout = sys.__stdout__; " + count) == ["0", "flushed"]
    assert run(startup + "import sys; sys.stdout = sys.__stdout__; " + count, AVSKIT_KEEP_DENORMALS="1") == [str(1 << 20), "kept"]
