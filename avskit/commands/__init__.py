"""The commands of ``avskit``, one module per group; ``cli.py`` assembles them into the Typer app.

Each module declares its commands' options (shared ones from :mod:`avskit.commands.options`),
calls ``avskit.analyses`` and prints (through :mod:`avskit.commands.console`); none holds logic.
"""
