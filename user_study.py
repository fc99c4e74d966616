"""User study: select clips to rate, a rating page, and collect ratings into retrain data (see --help)."""

from perfex.cli.study import main

if __name__ == "__main__":
    main()
