"""The report's instrument checks (issue #28) from records: the localisation controls' table and the
pathways table and figures, on the committed records of a real positive-control run and a real
pathways measurement (reports/training/)."""

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from avskit.analyses import instruments

TRAINING = Path(__file__).resolve().parents[1] / "reports" / "training"


def _records(name):
    return [json.loads(line) for line in (TRAINING / name).read_text().splitlines()]


def _as_control(records, seed, jaccard, **identity):
    """The positive control's run re-labelled as another run (its seed, J and identity changed), probe included."""
    out = []
    for r in copy.deepcopy(records):
        prov = r["provenance"]
        target = prov.get("trained", prov) if r["kind"] == "attention_frames" else prov
        target.update(seed=seed, supervise_attention=None, **identity)
        if "run_id" in prov:
            prov["run_id"] = f"{prov['run_id']}-as-{seed}"  # another launched run
        if r["kind"] == "train" and r["metric"] == "jaccard":
            r["value"] = jaccard
        out.append(r)
    return out


@pytest.fixture(scope="module")
def controls():
    positive = _records("positive-control-s0.records.jsonl")
    base = _as_control(positive, 0, 0.91)
    for r in base:  # the base's probe reads near chance: the point of the check
        for site in r.get("sites", []):
            if isinstance(site.get("localisation"), dict) and site["localisation"].get("selected"):
                site["localisation"]["selected"]["roc_auc"]["mean"] = 0.52  # every fusion's, so the last one's too
    blind = _as_control(positive, 1, 0.31, audio_blind=True)
    return positive + base + [r for r in blind if r["kind"] == "train"]  # the blind run: trained, not probed


def test_instrument_check_puts_each_run_in_its_row(controls):
    frame = instruments.instrument_check(controls).frame.set_index("row")
    positive, base, blind = (frame.loc[c] for c in instruments.CONTROLS)
    probe = next(r for r in _records("positive-control-s0.records.jsonl") if r["kind"] == "attention_frames")
    chosen = [s["localisation"] for s in probe["sites"] if isinstance(s.get("localisation"), dict)][-1]["selected"]  # the last fusion
    assert positive["chosen query's ROC-AUC (measured; chance 0.5)"] == pytest.approx(chosen["roc_auc"]["mean"])
    assert positive["synthetic S4 J (measured)"] == pytest.approx(100 * 0.9087538681064151)
    assert base["chosen query's ROC-AUC (measured; chance 0.5)"] == pytest.approx(0.52)
    assert base["synthetic S4 J (measured)"] == pytest.approx(91.0) and base["seeds trained"] == 1
    assert blind["seeds trained"] == 1 and blind["seeds probed with a query chosen on val"] == 0
    assert blind["synthetic S4 J (measured)"] == pytest.approx(31.0)
    assert pd.isna(blind["chosen query's ROC-AUC (measured; chance 0.5)"])  # not probed: a dash, never a 0


def test_pathways_table_and_figures(controls, tmp_path):
    from avskit.analyses.figure_io import save_figure

    measured = _records("pathways-ms3-1000-s1.records.jsonl")
    table = instruments.pathways(measured + measured)  # the same measurement twice: shown once
    rows = table.frame.to_dict("records")
    record = measured[-1]
    assert [r["path"] for r in rows] == ["whole audio"] + [d["name"] for d in record["declared"]]
    mask_head = next(r for r in rows if r["path"] == "queries -> mask head")
    expected = next(p for p in record["paths"] if p["path"] == "queries -> mask head" and p["mode"] == "swap")
    assert mask_head["swap: J patched (measured)"] == pytest.approx(expected["jaccard"])
    assert mask_head["swap: drop [95% CI] (measured)"].startswith(f"{expected['drop']:.3f} [")
    assert mask_head["completeness"] == "swap OK / zero OK" and mask_head["checkpoint"].startswith("avesformer-r18 on synthetic:ms3")
    assert "No pathways record yet" in instruments.pathways([]).notes
    probe = next(r for r in controls if r["kind"] == "attention_frames" and r["provenance"]["trained"].get("supervise_attention"))
    named = copy.deepcopy(record)  # a pathways record of the positive control's checkpoint: named by the run that made it
    named["provenance"]["weights_sha256"] = probe["provenance"]["weights_sha256"]
    label = instruments.pathways([named] + controls).frame["checkpoint"].iloc[0]
    assert label.startswith("avesformer-r18 on synthetic:s4 (seed 0, 600 steps, map supervised, sha256 ")
    for stem, fig in (("pathways", instruments.pathways_figure(measured)), ("instrument_check", instruments.instrument_check_figure(controls)),
                      ("pathways_empty", instruments.pathways_figure([]))):
        assert save_figure(fig, tmp_path / stem, {}, formats=("png",))
