"""au_analysis.py: per-clip AU statistics against traits, planted links found with q < .05, outputs, CLI errors."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from perfex.tools.analysis.clip_stats import clip_au_statistics
from perfex.cli.analysis import run
from perfex.core.clips import ClipSet
from perfex.core.errors import PerfexError
from helpers import REPO, run_script

pytestmark = pytest.mark.e2e

ALL_TRAITS = ["extroversion", "neuroticism", "agreeableness", "conscientiousness", "openness"]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """au_analysis over the generated sample data/train.csv.gz (360 clips; links in data/README.md): (data, out dir, table)."""
    data = REPO / "data" / "train.csv.gz"
    out = tmp_path_factory.mktemp("au") / "out"
    assert run(["--data", str(data), "--out", str(out), "--bootstrap", "200"]) == 0
    return data, out, pd.read_csv(out / "au_trait_correlations.csv")


def ranked(table: pd.DataFrame, trait: str) -> pd.DataFrame:
    part = table[table["trait"] == trait]
    return part.reindex(part["spearman_rho"].abs().sort_values(ascending=False).index)


def test_planted_links_come_first_with_q_below_005(analysed):
    """Links checked (data/README.md): extroversion drives talking and smile bursts (AU25 + AU26); neuroticism drives
    frowns (AU04 + AU07); conscientiousness lowers the rate of fidgety dimpler events (AU14, a negative link). The
    traits are correlated (0.57-0.79), so AU14 is checked for being most negative with its own trait, not first."""
    table = analysed[2]
    extroversion = ranked(table, "extroversion").head(3)
    assert extroversion["statistic"].str.match(r"AU2[56] ").all() and (extroversion["spearman_q"] < 0.05).all()
    neuroticism = ranked(table, "neuroticism").head(4)
    assert neuroticism["statistic"].str.match(r"AU0[47] ").all() and (neuroticism["spearman_q"] < 0.05).all()
    au14 = table[table["statistic"] == "AU14 std"].set_index("trait")
    assert au14["spearman_rho"].idxmin() == "conscientiousness" and au14.loc["conscientiousness", "spearman_q"] < 0.05


def test_rows_are_clips_and_q_values_are_benjamini_hochberg_over_the_table(analysed):
    data, _, table = analysed
    assert (table["n_clips"] == 360).all() and len(table) == 17 * 3 * 5
    np.testing.assert_allclose(table["spearman_q"], stats.false_discovery_control(table["spearman_p"]), rtol=1e-5)
    np.testing.assert_allclose(table["pearson_q"], stats.false_discovery_control(table["pearson_p"]), rtol=1e-5)
    frames = pd.read_csv(data)
    clip = frames.groupby("ID").agg(mean=("AU12_r", "mean"), traits=("extroversion", "first"))
    row = table[(table["statistic"] == "AU12 mean") & (table["trait"] == "extroversion")].iloc[0]
    assert row["spearman_rho"] == pytest.approx(stats.spearmanr(clip["mean"], clip["traits"]).statistic, abs=1e-5)
    assert row["pearson_r"] == pytest.approx(stats.pearsonr(clip["mean"], clip["traits"]).statistic, abs=1e-5)
    assert (table["spearman_rho_low"] <= table["spearman_rho"]).all()
    assert (table["spearman_rho"] <= table["spearman_rho_high"]).all()


def test_writes_markdown_and_heatmap(analysed):
    out = analysed[1]
    text = (out / "au_trait_correlations.md").read_text()
    assert "360 clips (one row per clip)" in text and "### neuroticism" in text
    assert (out / "au_trait_correlations.png").read_bytes()[:4] == b"\x89PNG"


def test_activity_comes_from_presence_columns_where_given_else_intensity_at_least_one():
    features = np.array([[0.5, 2.0, 0.0], [1.5, 0.0, 1.0], [1.0, 3.0, 1.0], [0.2, 0.2, 0.0]], dtype=np.float32)
    clips = ClipSet(ids=np.array([7, 8]), files=np.array(["a.mp4", "b.mp4"], dtype=object), offsets=np.array([0, 3, 4]),
                    features=features, times=np.zeros(4, dtype=np.float32), feature_names=("AU01_r", "AU02_r", "AU02_c"))
    result = clip_au_statistics(clips, ["AU01_r", "AU02_r"], {"AU02_r": "AU02_c"})
    assert list(result.index) == [7, 8]
    np.testing.assert_allclose(result["AU01 active"], [2 / 3, 0])  # intensity >= 1
    np.testing.assert_allclose(result["AU02 active"], [2 / 3, 0])  # AU02_c, not the intensity
    np.testing.assert_allclose(result["AU02 std"], [np.std([2.0, 0.0, 3.0]), 0])


def test_against_a_deploys_predictions(analysed, tmp_path):
    data = analysed[0]
    frames = pd.read_csv(data)
    ids = frames["ID"].unique()
    predictions = pd.DataFrame({"ID": ids, "status": "ok"})
    per_clip = frames.groupby("ID")[ALL_TRAITS].first().reindex(ids)
    predictions[ALL_TRAITS] = per_clip.to_numpy()
    predictions.loc[:9, ALL_TRAITS] = np.nan  # ten clips were not predicted
    predictions.to_csv(tmp_path / "traits.csv", index=False)
    assert run(["--data", str(data), "--predictions", str(tmp_path / "traits.csv"), "--out", str(tmp_path / "o"),
                "--bootstrap", "20"]) == 0
    table = pd.read_csv(tmp_path / "o" / "au_trait_correlations.csv")
    assert (table["n_clips"] == 350).all()
    assert "predicted levels (traits.csv)" in (tmp_path / "o" / "au_trait_correlations.md").read_text()


def test_cli_errors_are_one_line_with_status_2(analysed, tmp_path):
    data, out, _ = analysed
    result = run_script("au_analysis.py", "--data", str(tmp_path / "missing.csv"))
    assert result.returncode == 2
    missing = tmp_path / "missing.csv"
    assert result.stderr.strip() == f"au_analysis.py: error: {missing} does not exist; check the path given to --data"
    with pytest.raises(PerfexError, match="au_trait_correlations.csv already exists; pass --force to overwrite it"):
        run(["--data", str(data), "--out", str(out)])
    pd.DataFrame({"ID": [1], "extroversion": [0.5]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(PerfexError, match=r"bad.csv lacks the column\(s\) neuroticism, agreeableness"):
        run(["--data", str(data), "--predictions", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")])
    assert run_script("au_analysis.py", "--bootstrap", "x").returncode == 2


def test_help_shows_defaults():
    result = run_script("au_analysis.py", "--help")
    assert result.returncode == 0
    assert "data/train.csv.gz" in result.stdout and "default: 1000" in result.stdout
