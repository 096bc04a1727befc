"""`avskit compare` and `avskit report`: resumable sweeps, and rendering as a pure function of records."""

import csv
import json
from pathlib import Path

import pytest

from avsbench_kit.results import load_records, matching
from avsbench_kit.spec import make_spec
from avskit.analyses import compare, report, tables
from avskit.analyses.compare import MeasureOptions, measure

from helpers import run, save_only

# ---- sweeps ----------------------------------------------------------------------------------------

SMALL = dict(size=64, warmup=0, iters=2, breakdown_iters=1)


def test_a_killed_sweep_resumes_without_redoing_finished_variants(tmp_path, monkeypatch):
    store = tmp_path / "records.jsonl"
    specs = [make_spec("avesformer-r18"), make_spec("avesformer-r18", {"stages": "TTT"})]
    calls = []
    real_flops = compare._MEASURE["flops"]

    def dying_flops(spec, opts, env):  # the machine dies while counting the second variant's FLOPs
        if spec == specs[1]:
            raise KeyboardInterrupt
        return real_flops(spec, opts, env)

    monkeypatch.setitem(compare._MEASURE, "flops", dying_flops)
    with pytest.raises(KeyboardInterrupt):
        measure(specs, MeasureOptions(**SMALL), store)
    assert {(r["model"], r["kind"]) for r in load_records(store)} == {
        ("avesformer-r18", "params"), ("avesformer-r18", "flops"), ("avesformer-r18", "dissipation"),
        ("avesformer-r18[stages=TTT]", "params")}

    for kind, fn in list(compare._MEASURE.items()):
        monkeypatch.setitem(compare._MEASURE, kind, lambda spec, opts, env, k=kind, f=(real_flops if kind == "flops" else fn):
                            calls.append((spec.label, k)) or f(spec, opts, env))
    sweep = measure(specs, MeasureOptions(**SMALL), store)
    assert calls == [("avesformer-r18[stages=TTT]", "flops"), ("avesformer-r18[stages=TTT]", "dissipation")]
    assert ("avesformer-r18", "params") in sweep.skipped and ("avesformer-r18[stages=TTT]", "params") in sweep.skipped
    latency = [r for r in load_records(store) if r["kind"] == "latency"]
    assert [r["model"] for r in latency] == ["avesformer-r18", "avesformer-r18[stages=TTT]"]
    assert latency[0]["ratio_to_anchor"] == 1.0 and latency[0]["provenance"]["anchor"] == "avesformer-r18"
    assert latency[1]["provenance"]["run"] == latency[0]["provenance"]["run"]  # timed side by side
    assert {m["name"] for m in latency[0]["modules"]} >= {"visual_backbone", "decoder", "mask_head"}

    calls.clear()
    built = []
    monkeypatch.setattr(compare, "build_from_spec", lambda spec: built.append(spec) or pytest.fail("rebuilt a finished variant"))
    again = measure(specs, MeasureOptions(**SMALL), store)
    assert calls == [] and built == [] and again.measured == []
    assert len(load_records(store)) == 8  # 2 variants x (params, flops, dissipation, latency)


def test_more_timed_rounds_than_recorded_is_measured_again(tmp_path):
    store = tmp_path / "records.jsonl"
    specs = [make_spec("avesformer-r18")]
    measure(specs, MeasureOptions(**SMALL, measurements=("latency",)), store)
    sweep = measure(specs, MeasureOptions(**{**SMALL, "iters": 3}, measurements=("latency",)), store)
    assert sweep.measured == [("avesformer-r18", "latency")]


def test_compare_cli_json_reads_back_a_finished_sweep(capsys, tmp_path):
    args = ["compare", "--qg", "none", "--base", "avesformer-r18", "--size", "64", "--warmup", "0", "--iters", "2",
            "--results", str(tmp_path / "r.jsonl"), "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    first = json.loads(out)
    assert [v["model"] for v in first["variants"]] == ["avesformer-r18", "avesformer-r18[qg=none,queries=1]"]
    none = first["variants"][1]
    assert none["params_live"] < first["variants"][0]["params_live"]  # no generator: fewer parameters
    assert none["latency_ms"]["n"] == 2 and none["anchor"] == "avesformer-r18" and none["flops"] > 0
    assert none["attention_sites"] > 0 and none["reported"] is None
    code, out, _ = run(capsys, *args)
    second = json.loads(out)
    assert code == 0 and second["measured"] == [] and second["variants"] == first["variants"]


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one axis"),
    (["--fusion", "all", "--qg", "all"], "give exactly one axis"),
    (["--fusion", "nonsense"], "fusion='nonsense' is not accepted"),
    (["--stages", "CXZ"], "stages='CXZ'"),
    (["--fusion", "tpavi", "--base", "avsbench-r50"], "fusion does not apply to avsbench-r50"),
    (["--qg", "qg", "--iters", "1"], "--iters must be at least 2"),
    (["--qg", "qg", "--threads", "0"], "--threads must be at least 1"),
    (["--qg", "qg", "--device", "tpu"], "--device 'tpu'"),
    (["--qg", "qg", "--train", "synthetic:coco"], "--train 'synthetic:coco'"),
    (["--qg", "qg", "--train", "/some/root"], "say which one with --subset"),
])
def test_compare_bad_input_is_one_line(capsys, tmp_path, args, message):
    code, out, err = run(capsys, "compare", *args, "--results", str(tmp_path / "r.jsonl"))
    assert code == 2 and message in err and "Traceback" not in err and out == ""
    assert not (tmp_path / "r.jsonl").exists()


# ---- rendering -------------------------------------------------------------------------------------

def _prov(**extra):
    return {"device": "cpu", "device_name": "Test CPU", "threads": 2, "torch": "2.14.1", "python": "3.11", "commit": "abc123",
            "time": "2026-11-26T00:00:00+00:00", "command": "avskit report", **extra}


def _maps_data():
    square = [[0.1 * (i + j) for j in range(7)] for i in range(7)]
    return {"base_model": "avesformer-r18", "input": "synthetic S4 frame (seed 0)", "size": 224, "weights": "random (untrained)",
            "fig4a": {"qg": {"probs": [[1.0] * 300], "verdict": "diversity 0.000 - DISSIPATED"},
                      "pqg": {"probs": [[1 / 17] * 17 for _ in range(16)], "verdict": "diversity 0.200"}},
            "fig8": [{"fusion": f, "kind": "softmax", "map": square, "verdict": "diversity 0.1"} for f in
                     ("dissipation", "tpavi", "cha", "sigmoid", "cross_attention")],
            "fig9": [square] * 16, "fig7": [{"map": square, "verdict": "diversity 0.1"}] * 6}


def fake_records(device: str = "cpu", scale: float = 1.0) -> list[dict]:
    """Well-formed records for every spec the report looks up (the renderer's input is data)."""
    records = []
    specs = [(spec, base) for _, base, axis, values in report.SWEEPS for spec in report.sweep_specs(base, axis, values)]
    specs = list(dict.fromkeys(specs))
    seen = set()
    for n, (spec, anchor) in enumerate(specs):
        d = spec.to_dict()
        latency = scale * (100.0 + 10 * n)
        modules = [{"name": name, "depth": 1, "latency_ms": latency * share, "share": share} for name, share in
                   (("audio_backbone", 0.1), ("visual_backbone", 0.3), ("query_generator", 0.1), ("decoder", 0.3), ("mask_head", 0.2))]
        fresh = spec not in seen
        seen.add(spec)
        records += [] if not fresh else [
            {"kind": "params", "model": spec.label, "spec": d, "metric": "params_live", "value": 100_000_000 + n, "declared": 110_000_000 + n,
             "provenance": _prov(size=64)},
            {"kind": "flops", "model": spec.label, "spec": d, "metric": "flops", "value": 30e9 + n, "provenance": _prov(size=224)},
            {"kind": "dissipation", "model": spec.label, "spec": d, "metric": "dissipated_sites", "value": n % 3, "sites": 12,
             "flagged": [], "provenance": _prov(size=224, input_seed=0)},
        ]
        for size in ((224, 320, 512) if spec.name == spec.label and anchor == "avesformer-r50" else (224,)):
            records.append({"kind": "latency", "model": spec.label, "spec": d, "metric": "latency_ms", "value": latency * size / 224,
                            "stats": {"median": latency, "iqr": 2.0, "n": 5}, "ratio_to_anchor": 1.0 + n / 10, "modules": modules,
                            "provenance": _prov(device=device, size=size, batch=1, dtype="fp32", path="eager", anchor=anchor, run="r1", iters=5)})
        if spec.name == spec.label and fresh:
            for metric, value in (("jaccard", 0.5 + n / 20), ("f_score", 0.6)):
                records.append({"kind": "train", "model": spec.label, "spec": d, "metric": metric, "value": value,
                                "provenance": _prov(data="synthetic:s4", audio_blind=False, steps=600, size=64, device_name="Training CPU")})
    spec = make_spec("avesformer-r18")
    records.append({"kind": "attention_maps", "model": spec.label, "spec": spec.to_dict(), "metric": "maps", "value": 16,
                    "data": _maps_data(), "provenance": _prov(size=224, input_seed=0)})
    return records


EXPECTED = ([f"tables/{name}.{ext}" for name in [f"table{i}" for i in range(3, 10)] + ["instrument_check", "pathways"]
             for ext in ("md", "tex", "csv")]
            + [f"figures/{stem}.{ext}" for stem in ("fig1_accuracy_latency", "fig3_runtime_breakdown", "fig4a_query_attention",
                                                    "fig7_decoder_layers", "fig8_fusion_maps", "fig9_pqg_queries",
                                                    "scaling_input_size", "scaling_queries", "latency_distributions", "localisation_by_variant",
                                                    "attention_over_training", "fig1_training_curves",
                                                    "instrument_check", "pathways")
               for ext in ("png", "svg")]
            + ["README.md", "records.jsonl"])


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    records = fake_records()
    first = tmp_path_factory.mktemp("a")
    report.render(records, first)
    return records, first


def test_render_writes_every_table_and_figure(rendered):
    _, first = rendered
    assert sorted(_files(first)) == sorted(EXPECTED)


def test_render_is_a_pure_function_of_records(rendered, tmp_path):
    records, first = rendered
    again = tmp_path / "again"  # the report's own records.jsonl (the same records, selected) redraws the same bytes
    assert report.select(load_records(first / "records.jsonl")) == report.select(records)
    report.render(load_records(first / "records.jsonl"), again)
    assert _files(again) == _files(first)


def test_changing_one_record_changes_its_cells(rendered, tmp_path, monkeypatch):
    records, first = rendered
    save_only(monkeypatch, "fig1_accuracy_latency")
    changed = json.loads(json.dumps(records))
    for r in changed:
        if r["kind"] == "latency" and r["model"] == "avsegformer-r50" and r["provenance"]["size"] == 224:
            r["value"] = 4321.0
    report.render(changed, tmp_path)
    assert "4321.0" in (tmp_path / "tables" / "table3.md").read_text()
    assert "4321.0" not in (first / "tables" / "table3.md").read_text()
    assert (tmp_path / "figures" / "fig1_accuracy_latency.png").read_bytes() != (first / "figures" / "fig1_accuracy_latency.png").read_bytes()


def test_each_figure_footer_names_the_devices_of_its_own_records(rendered):
    from PIL import Image

    _, first = rendered  # the fake latencies ran on "Test CPU", the trainings on "Training CPU"
    def device(stem):
        return json.loads(Image.open(first / "figures" / f"{stem}.png").info["Description"])["device"]
    for stem in ("fig3_runtime_breakdown", "scaling_input_size", "scaling_queries", "latency_distributions"):
        assert device(stem) == "Test CPU", stem
    assert device("fig1_accuracy_latency") == "Test CPU, Training CPU"  # latency and params beside the trained J
    assert device("fig1_training_curves") == "Training CPU"


def test_tables_label_reported_beside_measured(rendered):
    _, first = rendered
    t3 = (first / "tables" / "table3.md").read_text()
    assert "latency ms, RTX 3090 (reported)" in t3 and "latency ms, cpu (measured)" in t3
    assert "37.9" in t3 and "not in avskit" not in t3
    rows = {line.split("|")[1].strip(): line for line in t3.splitlines() if line.startswith("| ")}
    assert "21.6" in rows["catr-pvt"] and "18.9" in rows["ecmvae-pvt"] and "188.0" in rows["catr-pvt"]  # reported; declared by the release
    assert rows["ecmvae-r50"].split("|")[2].strip() in ("", "–") and "labels its ECMVAE and CATR rows ResNet-50" in t3  # no paper figure for R50
    t5 = list(csv.reader((first / "tables" / "table5.csv").read_text().splitlines()))
    assert t5[0][:4] == ["fusion", "S4 J (reported)", "S4 F (reported)", "MS3 J (reported)"]
    column = t5[0].index("synthetic S4 J (measured)")  # only the base (cross_attention) was trained
    assert [row[0] for row in t5[1:] if row[column]] == ["cross_attention"]
    tex = (first / "tables" / "table7.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "AVSS J (reported)" in tex
    t9 = (first / "tables" / "table9.md").read_text()
    assert "pvt_v2" in t9 and "backbone share, cpu (measured)" in t9 and "0.30" in t9
    readme = (first / "README.md").read_text()
    assert "Test CPU" in readme and "abc123" in readme and "avskit report" in readme and "RTX 3090" in readme
    for name in EXPECTED:
        if name.startswith("figures/") and name.endswith(".png"):
            assert Path(name).stem in readme


def test_gpu_records_add_a_gpu_column(tmp_path, monkeypatch):
    save_only(monkeypatch)
    report.render(fake_records() + fake_records("cuda", scale=0.05), tmp_path)
    header = (tmp_path / "tables" / "table3.csv").read_text().splitlines()[0]
    assert "latency ms, cpu (measured)" in header and "latency ms, cuda (measured)" in header
    assert "cuda" in (tmp_path / "README.md").read_text()


def test_report_cli_no_measure_renders_the_store(capsys, tmp_path):
    store = tmp_path / "store.jsonl"
    store.write_text("".join(json.dumps(r) + "\n" for r in fake_records()))
    code, out, err = run(capsys, "report", "--no-measure", "--results", str(store), "--out", str(tmp_path / "rep"), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["measured"] == 0 and len(summary["files"]) == len(EXPECTED)
    assert [row["model"] for row in summary["table3"]][:4] == list(tables.ZOO_ORDER)
    assert not [p for p in (tmp_path / "rep").rglob("*") if ".partial" in p.name or p.name.startswith(".report-")]


def test_report_bad_input_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "report", "--no-measure", "--results", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r"))
    assert code == 2 and "no record store" in err and "Traceback" not in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = tmp_path / "store.jsonl"
    store.write_text(json.dumps(fake_records()[0]) + "\n")
    code, _, err = run(capsys, "report", "--no-measure", "--results", str(store), "--out", str(blocker / "sub"))
    assert code == 2 and "--out" in err and "Traceback" not in err
    code, _, err = run(capsys, "report", "--results", str(tmp_path / "rep" / "records.jsonl"), "--out", str(tmp_path / "rep"))
    assert code == 2 and "the report's own copy" in err
    code, _, err = run(capsys, "compare", "--qg", "qg", "--results", str(blocker / "r.jsonl"))
    assert code == 2 and "--results" in err and "Traceback" not in err
    code, _, err = run(capsys, "report", "--no-measure", "--results", str(tmp_path), "--out", str(tmp_path / "r2"))
    assert code == 2 and "is a folder" in err and "Traceback" not in err
    code, _, err = run(capsys, "compare", "--qg", "qg", "--results", str(tmp_path))
    assert code == 2 and "is a folder" in err and "Traceback" not in err


def test_pareto_frontier():
    from avskit.analyses.figures import pareto

    points = [(10, 70), (12, 80), (15, 75), (8, 60), (20, 81)]
    assert pareto(points) == [3, 0, 1, 4]


def test_select_keeps_only_what_the_report_shows():
    records = fake_records()
    stray = {"kind": "latency", "model": "x", "spec": {"name": "x"}, "metric": "latency_ms", "value": 1.0, "provenance": _prov()}
    used = report.select(records + [stray])
    assert stray not in used and len(used) == len(records)


def test_latency_belongs_to_its_anchor_and_the_breakdown_can_be_skipped(tmp_path):
    store = tmp_path / "records.jsonl"
    r18, ttt = make_spec("avesformer-r18"), make_spec("avesformer-r18", {"stages": "TTT"})
    opts = MeasureOptions(**{**SMALL, "breakdown_iters": 0}, measurements=("latency",))
    measure([r18, ttt], opts, store)
    again = measure([ttt, r18], opts, store)  # anchored on the other one: a new run, both timed again
    assert sorted(again.measured) == sorted([("avesformer-r18", "latency"), ("avesformer-r18[stages=TTT]", "latency")])
    latency = load_records(store)
    assert [r["provenance"]["anchor"] for r in latency] == ["avesformer-r18"] * 2 + ["avesformer-r18[stages=TTT]"] * 2
    assert all(r["modules"] == [] and r["coverage"] is None for r in latency)


def test_each_table_takes_its_anchor_row_from_its_own_run():
    def latency(spec, value, run):
        return {"kind": "latency", "model": spec.label, "spec": spec.to_dict(), "metric": "latency_ms", "value": value,
                "ratio_to_anchor": 1.0, "stats": {"iqr": 1.0}, "modules": [],
                "provenance": _prov(size=224, batch=1, dtype="fp32", path="eager", anchor="avesformer-r50", run=run, iters=20)}

    base, none = make_spec("avesformer-r50"), make_spec("avesformer-r50", {"qg": "none"})
    zoo = [latency(make_spec(n), 300.0 + i, "zoo") for i, n in enumerate(tables.ZOO_ORDER) if n != "avesformer-r50"]
    records = [latency(base, 333.0, "zoo"), *zoo, latency(base, 444.0, "qg"), latency(none, 400.0, "qg")]
    t3 = tables.table3(records).frame.set_index("model")
    t4 = tables.table4(records).frame.set_index("query generator")
    assert t3.loc["avesformer-r50", "latency ms, cpu (measured)"] == 333.0  # the zoo run's rounds
    assert t4.loc["pqg", "latency ms, cpu (measured)"] == 444.0  # the qg sweep's rounds
    assert t4.loc["none", "latency ms, cpu (measured)"] == 400.0


def test_records_written_before_the_weights_field_still_count():
    """A spec field added later (weights) defaults to None: older records match in every lookup,
    the scaling figure's included (it compared spec dicts directly and lost five sizes)."""
    from avskit.analyses.figures import scaling_sizes
    from avskit.analyses.tables import BASE

    old = {k: v for k, v in make_spec(BASE).to_dict().items() if k != "weights"}
    records = [{"kind": "latency", "spec": old, "metric": "latency_ms", "value": 1.0,
                "provenance": {"size": size, "anchor": BASE, "device": "cpu"}} for size in (224, 288)]
    assert scaling_sizes(records, "cpu") == [224, 288]
    assert len(matching(records, "latency", make_spec(BASE).to_dict(), {"size": 288})) == 1


def test_trained_ablation_with_seeds_localisation_and_reuse(capsys, tmp_path):
    """Issue #16 item 4: each variant trained once per seed (here 2 x 2), J and F as mean ± sd, each
    trained checkpoint's attention probed (localisation of its fusion maps, dissipated share); run
    again, everything is read back. (The audio-blind control's runs: tests/test_recipe.py, through
    `report --train`; the validation curve: tests/test_engine.py.)"""
    store = tmp_path / "records.jsonl"
    args = ["compare", "--fusion", "tpavi,cross_attention", "--base", "avesformer-r18", "--train", "synthetic:s4", "--steps", "2",
            "--seeds", "0,1", "--videos", "7", "--probe-frames", "3", "--batch", "2", "--val-every", "0", "--measure", "none",
            "--results", str(store), "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    trained = [m for m in report["measured"] if m[1].startswith("train") and "attention" not in m[1]]
    assert len(trained) == 4  # 2 variants x 2 seeds
    rows = {r["model"]: r for r in report["variants"]}
    assert set(rows) == {"avesformer-r18", "avesformer-r18[fusion=tpavi]"}
    for row in rows.values():
        assert set(row["seeds"]) == {"0", "1"} and row["jaccard_sd"] is not None and 0 <= row["jaccard"] <= 1
        for seed in ("0", "1"):
            attention = row["seeds"][seed]["attention"]
            assert attention["site"].startswith("decoder.stages.2.layers.1.fusion") and attention["frames"] == 3
            assert 0 <= attention["dissipated_share"] <= 1 and attention["energy_ratio"] is not None
        assert row["trained_energy_ratio"] > 0 and row["trained_energy_ratio_sd"] is not None
    probes = [r for r in load_records(store) if r["kind"] == "attention_frames"]
    assert len(probes) == 4 and all(len(r["provenance"]["weights_sha256"]) == 64 for r in probes)

    code, out, err = run(capsys, *args)
    assert code == 0, err
    again = json.loads(out)
    assert again["measured"] == [] and again["variants"] == report["variants"]
    _trained_maps_are_drawn_from_the_checkpoints(store, tmp_path)


def _trained_maps_are_drawn_from_the_checkpoints(store, tmp_path):
    """Issue #16 item 5 on the checkpoints trained above: figures 4a, 7, 8 and 9 drawn from each
    variant's own seed-0 checkpoint (a test frame at the training size), each map scored against the
    sounding object, the checkpoints named with SHA-256, steps and J; panels without one say untrained;
    a new checkpoint makes a new maps record; --maps untrained draws the random-weight record."""
    import numpy as np
    import torch
    from PIL import Image

    from avsbench_kit.data.synthetic import synthetic_frame
    from avsbench_kit.probes.localisation import score_map
    from avsbench_kit.results import append_records
    from avskit.analyses.attention_figures import render_maps
    from avskit.analyses.dissipation import synthetic_sample

    untrained = {"kind": "attention_maps", "model": "avesformer-r18", "spec": make_spec("avesformer-r18").to_dict(), "metric": "maps",
                 "value": 16, "data": _maps_data(), "provenance": _prov(size=tables.REPORT_SIZE, input_seed=0)}
    append_records([untrained], store)  # stands for the 224 x 224 random-weight maps, made elsewhere
    found = report.trained_checkpoints(load_records(store))
    assert set(found) == {"avesformer-r18", "avesformer-r18[fusion=tpavi]"}
    assert found["avesformer-r18"]["frame"] == (64, 6) and found["avesformer-r18"]["steps"] == 2  # 7 videos: video 6 is the test split
    report._maps(store, lambda m: None)
    record = report._maps_record(load_records(store), trained=True)
    data, prov = record["data"], record["provenance"]
    assert prov["input_video"] == 6 and prov["size"] == 64 and prov["trained"] == report._maps_key(found)
    assert [e["source"] for e in data["fig8"]] == ["untrained", "trained", "untrained", "untrained", "trained"]
    assert data["sources"]["fig9"] == "trained" and data["sources"]["fig7"] == "untrained"  # no TTT checkpoint
    assert {c["label"] for c in data["checkpoints"]["fig8"]} == set(found) and "fig7" not in data["checkpoints"]
    shas = {c["label"]: c["sha256"] for c in data["checkpoints"]["fig8"]}
    assert shas["avesformer-r18"] == found["avesformer-r18"]["sha256"]
    scores = data["fig8"][4]["scores"]
    assert set(scores) == {"energy", "energy_ratio", "ciou", "ciou_area", "pointing_hit", "roc_auc", "area", "degenerate"}
    expected = score_map(torch.tensor(data["fig8"][4]["map"], dtype=torch.float64), torch.as_tensor(synthetic_sample(64, 0, 6, 0).mask))
    assert scores["ciou"] == pytest.approx(expected["ciou"], abs=1e-4) and len(data["fig9_scores"]) == 16  # the drawn map's own scores
    assert data["fig8"][2]["scores"] is None  # channel attention: no spatial map, not a zero
    report._maps(store, lambda m: None)  # the same checkpoints: read back
    assert sum(r["kind"] == "attention_maps" for r in load_records(store)) == 2

    records = load_records(store)
    assert report.chosen_maps(records)["data"] == data and report.chosen_maps(records, "untrained")["data"] == untrained["data"]
    rgb = np.asarray(synthetic_frame("s4", 0, 6, 0, 64).image)
    render_maps(data, rgb, tmp_path / "figs", {})
    meta = json.loads(Image.open(tmp_path / "figs" / "fig8_fusion_maps.png").info["Description"])
    assert {c["sha256"] for c in meta["checkpoints"]} == set(shas.values())
    assert meta["weights"].startswith("trained: ") and "2 steps" in meta["weights"] and "J 0." in meta["weights"]
    svg = (tmp_path / "figs" / "fig8_fusion_maps.svg").read_text()
    assert "[trained]" in svg and "[untrained]" in svg and "cIoU" in svg
    assert "UNTRAINED: random weights" in (tmp_path / "figs" / "fig7_decoder_layers.svg").read_text()  # no checkpoint at all


def test_convergence_is_judged_from_the_validation_curve():
    """Issue #16 item 6: Figure 1's synthetic panel says whether each run learned the task (test J >= 0.6)
    and, from its validation curve, whether it was still rising or stuck on a plateau."""
    def run(test_j, curve, seed=0, **prov):
        return {"value": test_j, "provenance": {"seed": seed, **prov},
                "val_curve": [{"step": s, "jaccard": j} for s, j in curve]}

    assert tables.convergence(run(0.91, [(100, 0.5), (200, 0.85), (300, 0.905), (400, 0.91), (500, 0.912)])) == "learned (J >= 0.6)"
    assert tables.convergence(run(0.91, [(100, 0.5), (200, 0.85), (300, 0.88), (400, 0.89), (500, 0.91)])) \
        == "learned (J >= 0.6), still rising"  # +0.02 since step 400
    assert tables.convergence(run(0.55, [(100, 0.3), (200, 0.4), (300, 0.45), (400, 0.5), (500, 0.55)])) == "not converged (still rising)"
    assert tables.convergence(run(0.31, [(100, 0.30), (200, 0.31), (300, 0.31), (400, 0.31), (500, 0.31)])) \
        == "not learned (plateau below J 0.6)"
    assert tables.late_gain(run(0.91, [(100, 0.5), (200, 0.85), (300, 0.88), (400, 0.89), (500, 0.91)])) \
        == pytest.approx((0.02, 400, 500))  # the one window the README's sentences use too
    assert tables.late_gain(run(0.9, [(100, 0.5), (200, 0.9)])) is None
    assert tables.convergence({"value": 0.3, "provenance": {}}) == "unknown (no validation curve)"
    assert tables.convergence({"value": 0.9, "provenance": {}}) == "learned (J >= 0.6); no validation curve"
    spec = make_spec("avsbench-r50")
    older = {"kind": "train", "model": spec.label, "spec": spec.to_dict(), "metric": "jaccard", "value": 0.3,
             "provenance": _prov(data="synthetic:s4", seed=0, steps=600)}
    curved = {**run(0.7, [(100, 0.5), (200, 0.7)], **_prov(data="synthetic:s4", steps=900)), "kind": "train", "model": spec.label,
              "spec": spec.to_dict(), "metric": "jaccard"}
    seed1 = {**curved, "provenance": {**curved["provenance"], "seed": 1}}
    assert tables.train_record([older, curved, seed1, older], spec) is curved  # seed 0, and the run whose convergence can be judged
    from avskit.analyses.figures import recipe_text

    assert recipe_text({"provenance": {"steps": 900, "batch": 8, "lr": 2e-4, "warmup": 30, "size": 64, "gemm_gmacs_before": 98.4},
                        "seconds": 1500}) == "900 steps, batch 8, lr 0.0002, warmup 30, 64px, 25 min at 98 GMAC/s"
    assert recipe_text({"provenance": {"steps": 600, "batch": 8, "size": 64, "device": "cpu", "device_name": "Intel(R) Xeon(R) Processor",
                                       "gemm_gmacs_before": 120}, "seconds": 900}).endswith("15 min at 120 GMAC/s (Intel Xeon)")


def test_ablation_tables_show_trained_columns_over_seeds():
    """Tables 4, 5 and 7: the trained base's variants, J over the seeds (mean, sd, n), their probed
    checkpoints' energy ratio, cIoU@0.5 and dissipated share, and the audio-blind control in the notes."""
    from avskit.analyses import tables

    records = fake_records()
    recipe = {"data": "synthetic:s4", "size": 64, "steps": 800, "batch": 8, "lr": 2e-4, "videos": 3000, "warmup": 30}
    for fusion, j0 in (("tpavi", 0.70), ("cross_attention", 0.80)):
        spec = make_spec("avesformer-r18", {"fusion": fusion})
        for seed in (0, 1, 2):
            for blind in (False, True) if fusion == "cross_attention" else (False,):
                value = 0.3 if blind else j0 + 0.01 * seed
                for metric in ("jaccard", "f_score"):
                    records.append({"kind": "train", "model": spec.label, "spec": spec.to_dict(), "metric": metric, "value": value,
                                    "provenance": _prov(**recipe, seed=seed, audio_blind=blind)})
            site = {"site": "decoder.stages.2.layers.1.fusion.cross_attn.attn", "dissipated_share": 0.25 * seed,
                    "localisation": {"mean": {"energy_ratio": {"mean": 1.5 + seed}, "ciou@0.5": 0.5, "auc": 0.4, "degenerate": 0, "n": 32}}}
            records.append({"kind": "attention_frames", "model": spec.label, "spec": spec.to_dict(), "metric": "frames", "value": 32,
                            "sites": [site], "provenance": _prov(trained={**recipe, "seed": seed, "audio_blind": False}, frames=32,
                                                                             data="synthetic:s4")})
    frame = tables.table5(records).frame.set_index("fusion")
    row = frame.loc["cross_attention"]
    assert row["synthetic S4 J (measured)"] == pytest.approx(81.0) and row["synthetic S4 J sd (measured)"] == pytest.approx(1.0)
    assert row["seeds (measured)"] == 3 and row["energy ratio, trained (measured)"] == pytest.approx(2.5)
    assert row["dissipated share, trained (measured)"] == pytest.approx(0.25) and row["cIoU@0.5, trained (measured)"] == pytest.approx(0.5)
    assert frame.loc["tpavi"]["synthetic S4 J (measured)"] == pytest.approx(71.0)
    notes = tables.table5(records).notes
    assert "avesformer-r18 with each variant" in notes and "800 steps" in notes and "audio-blind control (avesformer-r18, 3 seeds): J 30.0" in notes
    from avskit.analyses.figures import localisation_by_variant

    fig = localisation_by_variant(records)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["qg=pqg = fusion=cross_attention = stages=CTT (base)", "fusion=tpavi"]  # the base's checkpoints drawn once
    assert [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_linestyle() == "--"] == [1.0]  # chance, from which points read
    assert fig.axes[0].get_xlabel().startswith("energy ratio")
    from avskit.analyses.report_readme import trained_findings

    findings = trained_findings(records)  # the report README's sentences: measured beside reported, the effect judged by its spread
    assert len(findings) == 1 and findings[0].startswith(
        "- Table 5, fusion=tpavi: synthetic J 71.0 ± 1.0 (3 seeds: 70.0, 71.0, 72.0) against the base's (fusion=cross_attention) "
        "81.0 ± 1.0 (3 seeds): "
        "-10.0 points, lower than the base, beyond the larger seed sd (1) and with a CI that excludes 0; 95% CI of the difference "
        "[-12.3, -7.7] (Welch's t). Reported (J, against cross_attention): S4 -0.3, MS3 -2.5; the same direction as reported. "
        "Its trained maps: energy ratio 2.50, cIoU@0.5 0.50, dissipated share 0.25; attention sites "
        "dissipated on most test frames: 0.333 of 1.")
    assert row["dissipated sites, trained (measured)"] == "0.333 of 1"  # seed 2's site is flagged on half its frames
    tpavi = make_spec("avesformer-r18", {"fusion": "tpavi"})
    failed = [{"kind": "train", "model": tpavi.label, "spec": tpavi.to_dict(), "metric": m, "value": 0.4,
               "provenance": _prov(**recipe, seed=3, audio_blind=False)} for m in ("jaccard", "f_score")]
    assert "(4 seeds: 70.0, 71.0, 72.0, 40.0; seed 3 did not learn the task (J < 0.6))" in trained_findings(records + failed)[0]
    kept = report.select(records)
    assert sum(r["kind"] == "attention_frames" for r in kept) == 6 and sum(r["kind"] == "train" and r["spec"]["fusion"] == "tpavi" for r in kept) == 6
