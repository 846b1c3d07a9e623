"""The evaluate step's report: one self-contained HTML page that the MLflow UI shows in its artifact view."""

from __future__ import annotations

import base64
import html

from demand.metrics import BASELINES, METRICS

STYLE = (
    "body{font-family:sans-serif;max-width:60em}td,th{padding:2px 10px;text-align:right}img{max-width:100%}"
)


def render_report(
    title: str,
    context: dict[str, str],
    scores: dict[str, dict[str, float]],
    skills: dict[str, float],
    figures: dict[str, bytes],
) -> str:
    """`scores` maps model or baseline to its metrics; `figures` maps a caption to PNG bytes."""
    facts = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in context.items())
    header = "".join(f"<th>{m}</th>" for m in METRICS)
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
        + "".join(f"<td>{values[m]:.3f}</td>" for m in METRICS)
        + "</tr>"
        for name, values in scores.items()
    )
    skill_items = "".join(
        f"<li>against {html.escape(name)}: {skills[name]:+.1%} lower RMSE</li>" for name in BASELINES
    )
    images = "".join(
        f"<h3>{html.escape(caption)}</h3><img alt='{html.escape(caption)}' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        for caption, png in figures.items()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{facts}</ul>"
        f"<h2>Scores on the test rows</h2><table><tr><th></th>{header}</tr>{rows}</table>"
        f"<h2>Skill</h2><ul>{skill_items}</ul><h2>Plots</h2>{images}</body></html>"
    )
