"""One module per experiment: specs in, records and tables out. The CLI only calls these."""
