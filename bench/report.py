"""Turn collected samples into the printed table, Markdown and JSON."""

import json
import os
import statistics


def summarize(samples, rss, units, runners, modes):
    """Medians and ratios to native (same mode, same run) per bench/runner."""
    out = {}
    for mode in modes:
        out[mode] = {}
        for bench, unit in units.items():
            row = {}
            for r in runners:
                vals = samples.get((mode, bench, r), [])
                mem = rss.get((mode, bench, r), [])
                row[r] = {"unit": unit, "samples": vals,
                          "median": statistics.median(vals) if vals else None,
                          "maxrss_kb": int(statistics.median(mem)) if mem else None}
            base = row.get("native", {}).get("median")
            for cell in row.values():
                m = cell["median"]
                cell["ratio"] = m / base if m is not None and base else None
            out[mode][bench] = row
    return out


def fmt_value(v, unit):
    if v is None:
        return "-"
    if unit == "ns/op":
        for div, suffix in ((1e6, "ms"), (1e3, "us")):
            if v >= div:
                return f"{v / div:.3g} {suffix}"
        return f"{v:.0f} ns"
    return f"{v * 1e3:.1f} ms" if v < 10 else f"{v:.2f} s"


def fmt_ratio(r):
    if r is None:
        return "fail"
    return f"{r:.0f}x" if r >= 100 else f"{r:.2g}x" if r < 10 else f"{r:.1f}x"


def _ratio_rows(summary, mode, runners):
    header = ["benchmark", "native"] + [r for r in runners if r != "native"]
    rows = []
    for bench, row in summary[mode].items():
        native = row["native"]
        cells = [bench, fmt_value(native["median"], native["unit"])]
        cells += [fmt_ratio(row[r]["ratio"]) for r in header[2:]]
        rows.append(cells)
    return header, rows


def _rss_rows(summary, mode, runners, benches):
    header = ["peak RSS MiB"] + list(runners)
    rows = []
    for bench in benches:
        row = summary[mode].get(bench)
        if row:
            rows.append([bench] + [f"{row[r]['maxrss_kb'] / 1024:.1f}" if row[r]["maxrss_kb"] else "-"
                                   for r in runners])
    return header, rows


def _text_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _unavailable(runner_info):
    return [f"{name}: {info['reason']}" + (f"  [{info['install']}]" if info["install"] else "")
            for name, info in runner_info.items() if not info["available"]]


def render(doc, table):
    """Whole report with `table` as the text or Markdown table renderer."""
    runners = [n for n, i in doc["runners"].items() if i["available"]]
    parts = []
    for mode in doc["modes"]:
        title = f"{mode} ({doc['meta']['pin_note'] if mode == 'pinned' else 'free scheduling'})"
        parts.append(f"{'## ' if table is _md_table else '== '}{title}")
        parts.append(table(*_ratio_rows(doc["summary"], mode, runners)))
    mem_mode = doc["modes"][-1]
    parts.append(f"{'## ' if table is _md_table else '== '}memory ({mem_mode}; largest process "
                 "in the runner's tree, median)")
    parts.append(table(*_rss_rows(doc["summary"], mem_mode, runners, doc["memory_benches"])))
    missing = _unavailable(doc["runners"])
    if missing:
        parts.append("unavailable runners:\n" + "\n".join("  " + m for m in missing))
    if doc["errors"]:
        parts.append("failures:\n" + "\n".join("  " + e for e in doc["errors"]))
    return "\n\n".join(parts)


def write(doc, results_dir, stamp):
    """Write JSON + Markdown (timestamped and latest); return the paths."""
    os.makedirs(results_dir, exist_ok=True)
    md = ("# sentry benchmarks\n\n"
          f"{doc['meta']['date']}, {doc['meta']['host']}, {doc['meta']['rounds']} rounds. "
          "native column: absolute median; other columns: ratio to native in the same mode.\n\n"
          + render(doc, _md_table) + "\n")
    paths = []
    for name in (f"bench-{stamp}", "latest"):
        for ext, text in (("json", json.dumps(doc, indent=1)), ("md", md)):
            path = os.path.join(results_dir, f"{name}.{ext}")
            with open(path, "w") as f:
                f.write(text)
            paths.append(path)
    return paths


def text(doc):
    return render(doc, _text_table)
