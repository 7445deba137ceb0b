#!/usr/bin/python3
"""Summarises a tools/bench.sh results directory.

    bench_report.py RESULTS_DIR

Reads runs.csv (one row per metric per run), allocators.txt, workloads.tsv,
meta.txt and notes.txt; writes summary.csv, table.md and chart.svg into the
same directory and prints table.md. Standard library only.
"""

import csv
import html
import os
import statistics
import sys
from collections import defaultdict

# metric key -> (label, unit, scale, higher_is_better). The first ones a
# workload reports become its table rows; peak_rss_kb gets its own table.
METRICS = [
    ("ops_per_sec", "throughput", "Mops/s", 1e-6, True),
    ("ns_per_pair", "malloc+free pair", "ns", 1.0, False),
    ("seconds", "time", "s", 1.0, False),
    ("rss_after_free_kb", "RSS after free", "MiB", 1 / 1024, False),
    ("rss_idle_kb", "RSS after idle", "MiB", 1 / 1024, False),
    ("rss_after_exit_kb", "RSS after thread exit", "MiB", 1 / 1024, False),
]
PEAK = ("peak_rss_kb", "peak RSS", "MiB", 1 / 1024, False)

COLORS = {
    "hakmem": "#d62728",
    "glibc": "#7f7f7f",
    "mimalloc": "#1f77b4",
    "jemalloc": "#2ca02c",
    "tcmalloc": "#ff7f0e",
}
EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf"]


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


class Cell:
    """Runs of one (workload, allocator, metric)."""

    def __init__(self):
        self.values = []
        self.failures = []

    @property
    def median(self):
        return statistics.median(self.values) if self.values else None

    @property
    def spread(self):
        if len(self.values) < 2 or not self.median:
            return 0.0
        return (max(self.values) - min(self.values)) / abs(self.median)


def load(out):
    allocators = read_lines(os.path.join(out, "allocators.txt"))
    workloads = [line.split("\t", 1) for line in read_lines(os.path.join(out, "workloads.tsv"))]
    values = defaultdict(list)  # (workload, allocator, metric) -> [value]
    failures = defaultdict(list)  # (workload, allocator) -> [status]
    runs = defaultdict(set)  # (workload, allocator) -> {rep}
    with open(os.path.join(out, "runs.csv")) as f:
        for row in csv.DictReader(f):
            key = (row["workload"], row["allocator"])
            runs[key].add(row["rep"])
            if row["status"] != "ok":
                failures[key].append(row["status"])
            elif row["metric"]:
                values[key + (row["metric"],)].append(float(row["value"]))
    return allocators, workloads, values, failures, runs


def summarise(out):
    allocators, workloads, values, failures, runs = load(out)
    meta = read_lines(os.path.join(out, "meta.txt"))
    notes = read_lines(os.path.join(out, "notes.txt"))

    # rows: (workload, metric spec); one per primary metric the workload reports
    rows = []
    for name, _cmd in workloads:
        present = {m for (w, _a, m) in values if w == name}
        specs = [m for m in METRICS if m[0] in present]
        if not specs and any(failures[(name, a)] for a in allocators):
            specs = [METRICS[0]] if "memory" not in name else [METRICS[2]]
        rows.extend((name, spec) for spec in specs)

    def cells(name, spec):
        out_cells = {}
        for a in allocators:
            c = Cell()
            c.values = values.get((name, a, spec[0]), [])
            c.failures = failures.get((name, a), [])
            out_cells[a] = c
        meds = [c.median for c in out_cells.values() if c.median is not None and not c.failures]
        if not meds:
            meds = [c.median for c in out_cells.values() if c.median is not None]
        best = (max(meds) if spec[4] else min(meds)) if meds else None
        return out_cells, best

    summary = []
    table_rows = []
    chart_rows = []
    for name, spec in rows:
        cs, best = cells(name, spec)
        spec = row_spec(spec, best)
        table_rows.append((name, spec, cs, best))
        chart_rows.append((name, spec, cs, best))
        for a, c in cs.items():
            med = c.median
            summary.append({
                "workload": name,
                "metric": spec[0],
                "allocator": a,
                "median": med,
                "min": min(c.values) if c.values else None,
                "max": max(c.values) if c.values else None,
                "runs_ok": len(c.values),
                "runs_failed": len(c.failures),
                "ratio_to_best": (med / best) if med is not None and best else None,
                "higher_is_better": int(spec[4]),
            })
    peak_rows = []
    for name, _cmd in workloads:
        cs, best = cells(name, PEAK)
        if best is None and not any(c.failures for c in cs.values()):
            continue
        peak_rows.append((name, PEAK, cs, best))
        for a, c in cs.items():
            med = c.median
            summary.append({
                "workload": name,
                "metric": PEAK[0],
                "allocator": a,
                "median": med,
                "min": min(c.values) if c.values else None,
                "max": max(c.values) if c.values else None,
                "runs_ok": len(c.values),
                "runs_failed": len(c.failures),
                "ratio_to_best": (med / best) if med is not None and best else None,
                "higher_is_better": 0,
            })

    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summary[0].keys()) if summary else ["workload"])
        w.writeheader()
        for r in summary:
            w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v))
                        for k, v in r.items()})

    md = markdown(meta, notes, allocators, workloads, table_rows, peak_rows)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "chart.svg"), "w") as f:
        f.write(svg(allocators, chart_rows, peak_rows, meta))
    sys.stdout.write(md)


def row_spec(spec, best):
    """Picks a readable unit for throughput rows (Mops/s, Kops/s or ops/s)."""
    if spec[0] != "ops_per_sec" or not best:
        return spec
    if best >= 1e5:
        return spec
    if best >= 100:
        return (spec[0], spec[1], "Kops/s", 1e-3, spec[4])
    return (spec[0], spec[1], "ops/s", 1.0, spec[4])


def row_spread(cs):
    return max((c.spread for c in cs.values()), default=0.0)


def cell_text(c, spec, best):
    if not c.values:
        return "FAIL" if c.failures else "-"
    med = c.median
    text = f"{fmt(med * spec[3])} ({med / best:.2f})" if best else fmt(med * spec[3])
    if best and med == best and not c.failures:
        text = f"**{text}**"
    if c.failures:
        text += f" ⚠{len(c.failures)} failed"
    return text


def markdown(meta, notes, allocators, workloads, rows, peak_rows):
    lines = ["# Allocator benchmark", ""]
    lines += [f"- {m}" for m in meta]
    lines.append("")
    head = "| workload | metric | " + " | ".join(allocators) + " | spread |"
    sep = "|---|---|" + "---:|" * len(allocators) + "---:|"
    lines += [
        "Median of the runs; in parentheses the ratio to the best allocator (bold, 1.00).",
        "↑ higher is better, ↓ lower is better. spread: the largest (max-min)/median of the row's",
        "cells, a measure of run-to-run noise.",
        "",
        head,
        sep,
    ]
    for name, spec, cs, best in rows:
        arrow = "↑" if spec[4] else "↓"
        lines.append(f"| {name} | {spec[1]} ({spec[2]}) {arrow} | "
                     + " | ".join(cell_text(cs[a], spec, best) for a in allocators)
                     + f" | {row_spread(cs) * 100:.0f}% |")
    lines += ["", "Peak resident set (MiB, getrusage in the benchmark process) ↓", "", head, sep]
    for name, spec, cs, best in peak_rows:
        lines.append(f"| {name} | peak RSS (MiB) ↓ | "
                     + " | ".join(cell_text(cs[a], spec, best) for a in allocators)
                     + f" | {row_spread(cs) * 100:.0f}% |")
    lines += ["", "Workloads (commands as run):", ""]
    lines += [f"- `{name}`: `{cmd}`" for name, cmd in workloads]
    seen = set()
    fail_lines = []
    for name, spec, cs, _ in rows:
        for a in allocators:
            if cs[a].failures and (name, a) not in seen:
                seen.add((name, a))
                fail_lines.append(f"- {name} / {a}: " + ", ".join(cs[a].failures))
    if fail_lines:
        lines += ["", "Failed runs (logs/<workload>.<allocator>.<rep>.log):", ""] + fail_lines
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    lines.append("")
    return "\n".join(lines)


def svg(allocators, rows, peak_rows, meta):
    colors = {}
    extra = iter(EXTRA_COLORS)
    for a in allocators:
        colors[a] = COLORS.get(a) or next(extra, "#333333")

    bar_w, bar_gap, group_gap = 13, 1, 22
    group_w = len(allocators) * (bar_w + bar_gap) - bar_gap
    left, right = 60, 20
    plot_h = 220
    ngroups = max(len(rows), len(peak_rows), 1)
    width = left + right + ngroups * (group_w + group_gap)
    width = max(width, 720)
    panel_h = plot_h + 140
    top = 70
    height = top + 2 * panel_h + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="16" font-weight="bold">Allocator benchmark — '
           'relative to the best allocator per row (1.0 = best, taller is better)</text>']
    sub = next((m for m in meta if m.startswith("date:")), "")
    mode = next((m for m in meta if m.startswith("mode:")), "")
    out.append(f'<text x="{left}" y="40" fill="#444">{html.escape(sub)}; {html.escape(mode)}; '
               'median of runs</text>')
    # legend
    lx = left
    for a in allocators:
        out.append(f'<rect x="{lx}" y="50" width="12" height="12" fill="{colors[a]}"/>')
        out.append(f'<text x="{lx + 16}" y="60">{html.escape(a)}</text>')
        lx += 24 + 8 * len(a)

    def panel(y0, title, prow):
        parts = [f'<text x="{left}" y="{y0 + 14}" font-size="13" font-weight="bold">'
                 f'{html.escape(title)}</text>']
        base = y0 + 54 + plot_h
        for frac in (0.25, 0.5, 0.75, 1.0):
            y = base - frac * plot_h
            parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{"#999" if frac == 1.0 else "#ddd"}" stroke-width="1"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
                         f'{frac:.2g}</text>')
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{base}" y2="{base}" stroke="#333"/>')
        for gi, (name, spec, cs, best) in enumerate(prow):
            gx = left + group_gap / 2 + gi * (group_w + group_gap)
            for ai, a in enumerate(allocators):
                c = cs[a]
                x = gx + ai * (bar_w + bar_gap)
                if c.median is None or not best:
                    parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base - 4}" text-anchor="middle" '
                                 f'fill="{colors[a]}" font-weight="bold">✕</text>')
                    continue
                score = (c.median / best) if spec[4] else (best / c.median if c.median else 0)
                score = max(0.0, min(1.0, score))
                h = score * plot_h
                tip = f"{name} {spec[1]}: {a} {fmt(c.median * spec[3])} {spec[2]} ({c.median / best:.2f}x best)"
                opacity = "0.45" if c.failures else "1"
                parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" '
                             f'fill="{colors[a]}" fill-opacity="{opacity}"><title>{html.escape(tip)}</title></rect>')
                ty = base - h - 4
                parts.append(f'<text x="{x + bar_w / 2 + 3:.1f}" y="{ty:.1f}" font-size="8" fill="#333" '
                             f'transform="rotate(-90 {x + bar_w / 2 + 3:.1f} {ty:.1f})">{score:.2f}</text>')
            cx = gx + group_w / 2
            label = name
            parts.append(f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="end" font-size="10" '
                         f'transform="rotate(-35 {cx:.1f} {base + 14})">{html.escape(label)}</text>')
            if spec is not PEAK and spec[0] != "ops_per_sec":
                parts.append(f'<text x="{cx:.1f}" y="{base + 26}" text-anchor="end" font-size="9" '
                             f'fill="#666" transform="rotate(-35 {cx:.1f} {base + 26})">'
                             f'{html.escape(spec[1])}</text>')
        return parts

    out += panel(top, "Per workload: throughput (score = value/best); time and retained memory "
                      "(score = best/value)", rows)
    out += panel(top + panel_h, "Peak resident set: score = smallest/value", peak_rows)
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    summarise(sys.argv[1])
