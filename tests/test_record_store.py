"""The record store under concurrent writers: every process appends to its own shard, readers merge."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from avsbench_kit import UserError
from avsbench_kit.results import append_records, load_records, shard_folder

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import sys
    from avsbench_kit.results import append_records
    store, writer = sys.argv[1], int(sys.argv[2])
    sys.stdin.readline()  # every writer starts on the same signal
    for n in range(200):
        append_records([{"writer": writer, "n": n, "pad": "x" * 20000}], store)
""")


def test_four_processes_appending_at_once_lose_nothing(tmp_path):
    store = tmp_path / "records.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(w)], cwd=ROOT, stdin=subprocess.PIPE, text=True)
             for w in range(4)]
    for proc in procs:  # all four are started before any writes
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.stdin.close()
        assert proc.wait(timeout=600) == 0
    records = load_records(store)
    assert len(records) == 800
    assert sorted((r["writer"], r["n"]) for r in records) == [(w, n) for w in range(4) for n in range(200)]
    assert all(r["pad"] == "x" * 20000 for r in records)
    shards = sorted(shard_folder(store).glob("*.jsonl"))
    assert len(shards) == 4  # one file per writer
    assert all(line for s in shards for line in s.read_text().split("\n")[:-1])  # no blank lines


def test_a_folder_is_not_a_store(tmp_path):
    with pytest.raises(UserError, match="is a folder"):
        append_records([{"a": 1}], tmp_path)
    with pytest.raises(UserError, match="is a folder"):
        load_records(tmp_path)


def test_consolidate_merges_the_shards_into_one_file(tmp_path):
    from avsbench_kit.results import consolidate

    store = tmp_path / "records.jsonl"
    append_records([{"n": 1, "provenance": {"time": "2026-01-01T00:00:00+00:00"}}], store)
    (shard_folder(store) / "other-7.jsonl").write_text('{"n": 2, "provenance": {"time": "2026-01-02T00:00:00+00:00"}}\n')
    before = load_records(store)
    consolidate(store)
    assert not shard_folder(store).exists() and len(store.read_text().splitlines()) == 2
    assert load_records(store) == before
