"""What pyproject.toml cannot say: how the checkout's layout installs under two top-level names.

avsbench_kit installs as it is; avskit installs avskit/ with the checkout's baselines/ and
analyses/ inside it and the top-level cli.py as avskit/cli.py. In a source checkout,
avskit/__init__.py reaches the same three where they lie, so imports read the same either way.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

MOVED = ("baselines", "analyses")  # checkout folders installed as avskit.<name>


class BuildWithCli(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install reaches cli.py through avskit/__init__.py
            self.copy_file("cli.py", str(Path(self.build_lib) / "avskit" / "cli.py"))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        return outputs if self.editable_mode else [*outputs, str(Path(self.build_lib) / "avskit" / "cli.py")]


moved = [f"avskit.{name}" for name in find_packages(include=[f"{m}*" for m in MOVED])]
setup(
    packages=[*find_packages(include=["avsbench_kit*", "avskit", "avskit.*"]), *moved],
    package_dir={f"avskit.{m}": m for m in MOVED},
    cmdclass={"build_py": BuildWithCli},
)
