"""The ``avskit`` namespace: the command line (``avskit.cli``), the baselines (``avskit.baselines``)
and the analyses (``avskit.analyses``). ``avsbench_kit`` is the library underneath.

In an installed wheel the three live inside this package. In a source checkout they stay where the
project's layout puts them, beside this folder (``cli.py``, ``baselines/``, ``analyses/``), and this
package's search path reaches them there, so ``import avskit.baselines`` means the same in both.
"""

from pathlib import Path

_here = Path(__file__).resolve().parent
if not (_here / "cli.py").is_file():  # a checkout, installed editable or not at all
    __path__.append(str(_here.parent))  # noqa: F821 (a package's own search path)
