"""Train the hybrid attention network (run with --help for options)."""

from perfex.cli.scripts import main

if __name__ == "__main__":
    main("train", model="attn")
