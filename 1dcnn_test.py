"""Test the multi-scale 1D-CNN (run with --help for options)."""

from perfex.cli.scripts import main

if __name__ == "__main__":
    main("test", model="cnn")
