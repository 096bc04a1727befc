"""One module per experiment: specs in, records and tables out. The CLI only calls these."""

if __name__ != "avskit.analyses":  # one copy of each module: a second would hold its own state
    raise ImportError(f"import avskit.analyses, not {__name__} (the folder is installed inside the avskit package)")
