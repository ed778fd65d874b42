"""The Typer command line: options in, result objects out to :mod:`ctwa.cli.output`."""
