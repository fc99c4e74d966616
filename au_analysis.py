"""Correlate per-clip AU statistics with the Big Five traits (run with --help for options)."""

from perfex.cli.analysis import main

if __name__ == "__main__":
    main()
