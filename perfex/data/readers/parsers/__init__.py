"""One parser per input format (registered by name in ../formats.py) and the parsing they share."""
