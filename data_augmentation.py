"""Augment PerFeX clips as the original did, with provenance (run with --help for options)."""

from perfex.cli.scripts import main

if __name__ == "__main__":
    main("augment")
