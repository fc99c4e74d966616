"""Write an AU-trait correlation table as CSV, Markdown and a heatmap PNG (colour = Spearman rho, stars = q)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.plots import new_figure, save_figure
from ...core.tables import atomic_output
from .analyse import OUTPUT_FILES

STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


def stars(q: float) -> str:
    """'***' for q < .001, '**' < .01, '*' < .05, else ''."""
    return next((mark for level, mark in STAR_LEVELS if np.isfinite(q) and q < level), "")


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def _cell(row: pd.Series) -> str:
    return f"{row.spearman_rho:+.2f}{stars(row.spearman_q)} [{row.spearman_rho_low:+.2f}, {row.spearman_rho_high:+.2f}]"


def markdown(table: pd.DataFrame, source: str, top: int = 10) -> str:
    """Per trait, the ``top`` AU statistics by |Spearman rho| with rho, CI, Pearson r and q; then the note on stars."""
    lines = [f"AU statistics against {source}: {int(table['n_clips'].iloc[0])} clips (one row per clip).", ""]
    for trait, part in table.groupby("trait", sort=False):
        ranked = part.reindex(part["spearman_rho"].abs().sort_values(ascending=False).index).head(top)
        lines += [f"### {trait}", "", "| rank | AU statistic | Spearman rho [95% CI] | q (rho) | Pearson r | q (r) |",
                  "| ---: | --- | --- | ---: | ---: | ---: |"]
        lines += [f"| {k} | {row.statistic} | {_cell(row)} | {row.spearman_q:.2g} | {row.pearson_r:+.2f} | {row.pearson_q:.2g} |"
                  for k, row in enumerate(ranked.itertuples(), start=1)]
        lines.append("")
    lines.append("Stars: Benjamini-Hochberg q < .05 *, < .01 **, < .001 *** over the whole table of each method; "
                 "intervals: bootstrap 95% percentile, resampling source videos.")
    return "\n".join(lines) + "\n"


def plot_heatmap(table: pd.DataFrame, out_path: Path, title: str) -> Path:
    """AU statistic (rows) x trait (columns), coloured by Spearman rho, starred by its q-value."""
    rho = table.pivot(index="statistic", columns="trait", values="spearman_rho")
    rows, traits = list(dict.fromkeys(table["statistic"])), list(dict.fromkeys(table["trait"]))
    rho = rho.loc[rows, traits]
    q = table.pivot(index="statistic", columns="trait", values="spearman_q").loc[rows, traits]
    figure = new_figure(1.2 * len(traits) + 2.5, 0.22 * len(rows) + 1.5)
    ax = figure.add_subplot()
    image = ax.imshow(rho.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for i, j in np.ndindex(rho.shape):
        dark = abs(rho.iat[i, j]) > 0.6
        ax.text(j, i, stars(q.iat[i, j]), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(traits)), traits, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(title, fontsize=9)
    figure.colorbar(image, ax=ax, label="Spearman rho", shrink=0.6)
    return save_figure(figure, out_path)


def write_outputs(table: pd.DataFrame, out_dir: Path, source: str) -> list[Path]:
    """CSV, Markdown and heatmap in ``out_dir`` (the caller checked for existing files)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, png_path = (out_dir / name for name in OUTPUT_FILES)
    write_csv(table, csv_path)
    md_path.write_text(markdown(table, source))
    plot_heatmap(table, png_path, f"AU statistics vs {source} (Spearman rho; stars: BH q < .05/.01/.001)")
    return [csv_path, md_path, png_path]
