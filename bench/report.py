"""Turn collected samples into the printed table, Markdown and JSON."""

import json
import os
import statistics


def _median(vals):
    return statistics.median(vals) if vals else None


def summarize(samples, units, runners, modes):
    """Medians, and ratios to native of the same mode in the same run."""
    out = {}
    for mode in modes:
        out[mode] = {}
        for bench, unit in units.items():
            row = {r: {"unit": unit, "samples": samples.get((mode, bench, r), [])} for r in runners}
            for cell in row.values():
                cell["median"] = _median(cell["samples"])
            base = row.get("native", {}).get("median")
            for cell in row.values():
                m = cell["median"]
                cell["ratio"] = m / base if m is not None and base else None
            out[mode][bench] = row
    return out


def summarize_memory(mem, benches, runners):
    """{bench: {runner: {tree_pss_kb, max_rss_kb}}}, medians over rounds."""
    out = {}
    for bench in benches:
        out[bench] = {}
        for r in runners:
            pairs = mem.get((bench, r), [])
            pss = _median([p for p, _ in pairs if p])  # 0 = ended before any sample
            rss = _median([m for _, m in pairs])
            out[bench][r] = {"tree_pss_kb": pss, "max_rss_kb": rss}
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
    return f"{r:.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def _mib(kb):
    return "-" if not kb else f"{kb / 1024:.1f}"


def _ratio_rows(summary, mode, runners):
    header = ["benchmark", "native"] + [r for r in runners if r != "native"]
    rows = []
    for bench, row in summary[mode].items():
        native = row["native"]
        rows.append([bench, fmt_value(native["median"], native["unit"])]
                    + [fmt_ratio(row[r]["ratio"]) for r in header[2:]])
    return header, rows


def _startup_rows(summary, runners):
    """The `true` workload in absolute time (start-up: a ratio to a 1 ms
    native run says little), a row per mode."""
    header = ["start-up (`true`), median"] + list(runners)
    rows = []
    for mode, benches in summary.items():
        row = benches.get("true")
        if row is not None:
            rows.append([mode] + [fmt_value(row[r]["median"], row[r]["unit"]) for r in runners])
    return header, rows


def _memory_rows(memory, runners):
    header = ["MiB: tree PSS / max RSS"] + list(runners)
    rows = [[bench] + [f"{_mib(row[r]['tree_pss_kb'])} / {_mib(row[r]['max_rss_kb'])}"
                       for r in runners]
            for bench, row in memory.items()]
    return header, rows


def _text_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def render(doc, markdown=False):
    table = _md_table if markdown else _text_table
    heading = "## " if markdown else "== "
    bullet = "- " if markdown else "  "
    runners = [n for n, i in doc["runners"].items() if i["available"]]
    parts = []
    for mode in doc["modes"]:
        note = doc["meta"]["pin_note"] if mode == "pinned" else "free scheduling"
        parts.append(f"{heading}{mode} ({note}): native = median, others = ratio to native")
        parts.append(table(*_ratio_rows(doc["summary"], mode, runners)))
    startup = _startup_rows(doc["summary"], runners)
    if startup[1]:
        parts.append(f"{heading}start-up: the `true` workload (/bin/true), absolute")
        parts.append(table(*startup))
    if doc["memory"]:
        parts.append(f"{heading}memory (unpinned): peak PSS summed over the runner's process "
                     "tree / largest single process's RSS")
        parts.append(table(*_memory_rows(doc["memory"], runners)))
    missing = [f"{bullet}{n}: {i['reason'][:160]}" + (f"  [{i['install']}]" if i["install"] else "")
               for n, i in doc["runners"].items() if not i["available"]]
    if missing:
        parts.append("unavailable runners:\n" + "\n".join(missing))
    if doc["errors"]:
        parts.append("failures:\n" + "\n".join(bullet + e[:200] for e in doc["errors"]))
    return "\n\n".join(parts)


def write(doc, results_dir, stamp):
    """Write JSON + Markdown (timestamped and latest); return the paths."""
    os.makedirs(results_dir, exist_ok=True)
    meta = doc["meta"]
    md = (f"# sentry benchmarks\n\n{meta['date']}, {meta['host']}, {meta['rounds']} rounds\n\n"
          + render(doc, markdown=True) + "\n")
    paths = []
    for name in (f"bench-{stamp}", "latest"):
        for ext, text in (("json", json.dumps(doc, indent=1)), ("md", md)):
            path = os.path.join(results_dir, f"{name}.{ext}")
            with open(path, "w") as f:
                f.write(text)
            paths.append(path)
    return paths
