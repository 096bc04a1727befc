"""The latency distribution plot: every timed round, the median marked, a noisy run flagged; same input, same bytes."""

from avskit.analyses.figure_io import save_figure
from avskit.analyses.figures import latency_candidates, latency_distributions


def _record(model, samples):
    ordered = sorted(samples)
    median = ordered[len(ordered) // 2]
    iqr = ordered[3 * len(ordered) // 4] - ordered[len(ordered) // 4]
    return {"model": model, "stats": {"median": median, "iqr": iqr}, "samples_ms": samples}


def test_noisy_run_is_flagged_and_the_plot_is_byte_stable(tmp_path):
    steady = _record("avesformer-r18", [100.0 + 0.1 * i for i in range(20)])
    bimodal = _record("avsegformer-r50", [100.0] * 10 + [180.0] * 10)
    candidates = latency_candidates([steady, bimodal])
    assert [c["noisy"] for c in candidates] == [False, True]
    files = []
    for n in range(2):
        fig = latency_distributions([("one run", candidates)])
        if n == 0:
            from matplotlib.text import Text

            texts = [(t.get_text(), t.get_color()) for t in fig.findobj(Text) if t.get_text() and t.get_visible()]
            noisy = [t for t, _ in texts if "NOISY" in t]
            assert noisy == ["median 180.0 ms, IQR 44% NOISY"]  # the bimodal run, and only it
            labels = {t: c for t, c in texts if t in ("avesformer-r18", "avsegformer-r50")}
            assert labels == {"avesformer-r18": "black", "avsegformer-r50": "tab:red"}
        files.append(save_figure(fig, tmp_path / str(n) / "lat", {"commit": "abc"}))
    png0, svg0 = (open(f, "rb").read() for f in files[0])
    png1, svg1 = (open(f, "rb").read() for f in files[1])
    assert png0 == png1 and svg0 == svg1


def test_a_record_without_rounds_still_shows_its_median(tmp_path):
    old = {"model": "avesformer-r50", "stats": {"median": 50.0, "iqr": 1.0}}  # recorded before rounds were kept
    fig = latency_distributions([("old run", latency_candidates([old]))])
    from matplotlib.text import Text

    assert "avesformer-r50 (no rounds kept)" in [t.get_text() for t in fig.findobj(Text)]
    assert save_figure(fig, tmp_path / "old", {}, formats=("svg",))[0].endswith("old.svg")


def test_a_footer_shortens_many_commits_and_the_metadata_keeps_them(tmp_path):
    import hashlib

    from matplotlib import pyplot as plt

    commits = [hashlib.sha1(bytes([i])).hexdigest() for i in range(5)]
    commits[1] += "+dirty"
    fig, ax = plt.subplots()
    svg = save_figure(fig, tmp_path / "f", {"commit": ", ".join(commits)}, formats=("svg",))[0]
    text = open(svg).read()
    footer = f"5 commits ({commits[0][:7]}, {commits[1][:7]}+dirty, {commits[2][:7]}, ...; all of them in the file's metadata)"
    assert footer in text.replace("&#39;", "'") and commits[4] in text  # the full hash only in the metadata
    assert text.count(commits[4][:7]) == 1 and text.count(commits[0][:7]) == 2  # the metadata; and the footer too
