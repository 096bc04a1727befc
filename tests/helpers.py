"""Helpers shared by the test modules (pytest puts this folder on sys.path)."""

from avskit import cli


def run(capsys, *args):
    """Run ``avskit ARGS`` in-process; returns (exit status, stdout, stderr)."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err
