"""User study: pick clips for people to rate, a rating page, and collecting the ratings into retrain data."""
