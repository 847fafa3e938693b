"""Run the command line as ``python -m cli``."""

from cli.main import run

run()
