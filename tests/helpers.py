"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from avskit import cli


def run(capsys, *args):
    """Run ``avskit ARGS`` in-process; returns (exit status, stdout, stderr)."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save_only(monkeypatch, *stems):
    """For a test of the tables, the README or one figure: the other figures are built but not saved
    (saving is most of a render's time; every figure is checked on test_compare_report's `rendered` fixture)."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    from avskit.analyses import attention_figures, figure_io, figures

    save = figure_io.save_figure

    def some(fig, stem, *args, **kwargs):
        if Path(stem).name in stems:
            return save(fig, stem, *args, **kwargs)
        plt.close(fig)
        return []
    for module in (figure_io, figures, attention_figures):
        monkeypatch.setattr(module, "save_figure", some)
