"""``python -m featkit`` runs the CLI."""

from featkit.cli import main

main()
