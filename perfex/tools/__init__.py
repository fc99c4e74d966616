"""Research tools on top of the stages: AU analysis (analysis/) and the user study (study/)."""
