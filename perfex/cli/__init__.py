"""The command line: the scripts' parsers and runs (scripts.py), the perfex command, the analysis and study commands."""
