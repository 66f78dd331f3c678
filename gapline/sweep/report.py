"""A sweep's report: ``configs.csv``, ``summary.json``, heat maps and ``index.html``.

* ``heatmap_<preset>.png`` -- full-range Sharpe ratio of every configuration over two
  parameters (``--heatmap a,b``, default the first two of the grid; the mean over the other
  parameters' values); one parameter gives a one-row map.
* ``walk_forward_<preset>.png`` -- the stitched out-of-sample curve beside the in-sample best.
* ``index.html`` -- one self-contained page: the sweep, the best configurations, the heat maps,
  walk-forward folds, the deflated Sharpe ratio and PBO, failed tasks.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .analyze import analyze


def _png(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode()


def heatmap(configs: pd.DataFrame, x: str, y: str | None, value="sharpe", title=""):
    """A matplotlib figure: ``value`` averaged over the other parameters, ``y`` rows by
    ``x`` columns (one row when ``y`` is None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = configs.assign(_row=configs[y] if y else value)
    table = frame.pivot_table(index="_row", columns=x, values=value, aggfunc="mean")
    if not y:
        table.index = [value]
    fig, ax = plt.subplots(figsize=(1.4 + 1.1 * table.shape[1], 1.2 + 0.7 * table.shape[0]))
    data = table.to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    lim = max(abs(finite).max(), 1e-9) if finite.size else 1.0
    im = ax.imshow(data, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(i) for i in table.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y or "")
    for (i, j), v in np.ndenumerate(data):
        ax.text(j, i, "n/a" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center",
                fontsize=9)
    fig.colorbar(im, ax=ax, label=value)
    ax.set_title(title or value)
    return fig


def walk_forward_figure(result, title=""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    for series, label in ((result.oos_returns, "walk-forward (out of sample)"),
                          (result.best_returns, f"in-sample best: {result.in_sample_best}")):
        ((1 + series.fillna(0)).cumprod() - 1).plot(ax=ax, label=label)
    for fold in result.folds["oos_start"]:
        ax.axvline(pd.Timestamp(fold), color="0.85", lw=0.8, zorder=0)
    ax.set_ylabel("cumulative return")
    ax.set_title(title)
    ax.legend()
    return fig


def _table(frame: pd.DataFrame, floats="{:.4f}") -> str:
    if frame is None or len(frame) == 0:
        return "<p>none</p>"
    return frame.to_html(index=False, na_rep="n/a", border=0, classes="t",
                         float_format=lambda v: floats.format(v))


def _kv(d: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
                   for k, v in d.items())
    return f"<table class='t'>{rows}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if not np.isfinite(v) else f"{v:.4f}"
    return str(v)


def write_report(spec, outcome, store, windows) -> dict:
    """Write the files of the module docstring into the sweep's folder; returns their paths
    and the summary dict."""
    out = Path(outcome.out_dir)
    result = analyze(spec, outcome.tasks, store, windows, outcome.results)
    configs = result["configs"]
    paths, images, summary = {}, [], {"tasks": len(outcome.tasks), "ran": outcome.ran,
                                      "skipped": outcome.skipped, "errors": outcome.errors,
                                      "ingestion": outcome.ingestion.get("ingestion"),
                                      "presets": {}}
    if len(configs):
        configs.to_csv(out / "configs.csv", index=False)
        paths["configs"] = out / "configs.csv"
    params = list(spec.grid)
    axes = list(spec.heatmap) if spec.heatmap else params[:2]
    sections = []
    for preset, entry in result["presets"].items():
        part = configs[configs["costs"] == preset] if len(configs) else configs
        text = f"<h2>costs: {html.escape(preset)}</h2>"
        if len(part):
            top = part.sort_values("sharpe", ascending=False, na_position="last")
            text += "<h3>configurations (full range, best Sharpe first)</h3>" + _table(
                top.drop(columns=["costs"]).head(20))
        if axes and len(part):
            fig = heatmap(part, axes[0], axes[1] if len(axes) > 1 else None,
                          title=f"Sharpe ratio, {preset} costs")
            path = out / f"heatmap_{preset}.png"
            text += f"<img src='data:image/png;base64,{_png(fig, path)}'>"
            paths[f"heatmap_{preset}"] = path
        info = {"overfitting": entry["overfitting"]}
        ovf = entry["overfitting"]
        text += "<h3>multiple testing</h3>" + _kv({
            "configurations tried": ovf["configurations"],
            "with every window": ovf["complete"], "sessions": ovf["sessions"],
            **{f"deflated Sharpe: {k}": v for k, v in ovf["deflated_sharpe"].items()},
            **{f"PBO (CSCV): {k}": v for k, v in ovf["pbo"].items()}})
        wf = entry.get("walk_forward")
        if wf is not None:
            info["walk_forward"] = wf.summary
            fig = walk_forward_figure(wf, f"walk-forward {spec.walk_forward}, select "
                                          f"{spec.select}, {preset} costs")
            path = out / f"walk_forward_{preset}.png"
            text += (f"<h3>walk-forward {html.escape(str(spec.walk_forward))}</h3>"
                     + _kv(wf.summary) + _table(wf.folds)
                     + f"<img src='data:image/png;base64,{_png(fig, path)}'>")
            paths[f"walk_forward_{preset}"] = path
            wf.folds.to_csv(out / f"walk_forward_{preset}.csv", index=False)
        elif entry.get("walk_forward_note"):
            info["walk_forward"] = {"note": entry["walk_forward_note"]}
            text += f"<p>walk-forward: {html.escape(entry['walk_forward_note'])}</p>"
        summary["presets"][preset] = info
        sections.append(text)
    failed = outcome.results[outcome.results["error"].notna()] \
        if "error" in outcome.results else pd.DataFrame()
    if len(failed):
        cols = [c for c in ("key", *params, "costs", "start", "end", "worker", "error")
                if c in failed]
        sections.append("<h2>failed tasks</h2>" + _table(failed[cols]))
    head = _kv({"algorithm": spec.algorithm, "bundle": spec.bundle,
                "ingestion": outcome.ingestion.get("ingestion"),
                "range": f"{outcome.plan['sessions'][0]} .. {outcome.plan['sessions'][-1]}",
                "grid": "; ".join(f"{k}={','.join(v)}" for k, v in spec.grid.items()) or "none",
                "costs": ",".join(spec.costs), "walk-forward": spec.walk_forward or "no",
                "tasks": len(outcome.tasks), "run now": outcome.ran,
                "skipped (done before)": outcome.skipped, "failed": outcome.errors})
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>sweep "
            f"{html.escape(spec.algorithm)}</title><style>body{{font-family:sans-serif;"
            f"margin:2em}} .t{{border-collapse:collapse;font-size:13px}} .t td,.t th{{"
            f"padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}} img{{max-width:"
            f"100%}}</style></head><body><h1>sweep: {html.escape(spec.algorithm)} on "
            f"{html.escape(spec.bundle)}</h1>{head}{''.join(sections)}</body></html>")
    (out / "index.html").write_text(page)
    paths["html"] = out / "index.html"
    paths["summary"] = store.write_json("summary.json", summary)
    return {"paths": paths, "summary": summary, "configs": configs}
