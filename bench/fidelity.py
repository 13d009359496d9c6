"""bf16 against fp32, as issue 22 asks: for each folder of runs (one method and precision, several
seeds), the mean over seeds of the last epoch's clean and PGD accuracy (acc) and worst class,
on the test split, read from each finished run's reports/epochs.csv. Prints one row per folder
(mean and standard deviation over its runs, in percent) and, for each method, bf16 minus fp32 in
points.

    python3 bench/fidelity.py RUNS_ROOT     # RUNS_ROOT/<method>-<fp32|bf16>/<run id>/...
"""
import csv, json, os, re, sys
from statistics import mean, stdev

COLUMN = re.compile(r"^test_(clean|pgd[^_]*)_live_(acc|worst)$")

def last_row(run_dir):
    """The last epoch's row of a finished run (None while it still trains)."""
    if not finished(run_dir):
        return None
    path = os.path.join(run_dir, "reports", "epochs.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1] if rows else None


def finished(run_dir):
    """Whether the run's last event is `finished` with status `finished` (a stopped or failed
    run ends with a `finished` line too, with another status)."""
    try:
        with open(os.path.join(run_dir, "events.jsonl"), "rb") as f:
            last = f.read()[-4096:].splitlines()[-1]
        event = json.loads(last)
    except (OSError, IndexError, ValueError):
        return False
    return event.get("type") == "finished" and event.get("status") == "finished"

def folder_means(folder):
    """Each column's mean over the folder's runs and how many runs gave it (the per-epoch
    attack, e.g. pgd-10, and the last epoch's final one, e.g. pgd-20, are separate columns)."""
    per_column = {}
    for run in sorted(os.listdir(folder)):
        row = last_row(os.path.join(folder, run))
        for name, value in (row or {}).items():
            m = COLUMN.match(name)
            if m and value not in ("", None):
                per_column.setdefault(f"{m.group(1)} {m.group(2)}", []).append(float(value))
    return {k: (mean(v), len(v), stdev(v) if len(v) > 1 else 0.0) for k, v in per_column.items()}

def main(root):
    means = {name: folder_means(os.path.join(root, name)) for name in sorted(os.listdir(root))}
    columns = sorted({c for m in means.values() for c in m})
    print("folder," + ",".join(columns) + ",runs")
    for name, m in means.items():
        seeds = min((n for _, n, _ in m.values()), default=0)
        cells = (f"{100 * m[c][0]:.2f} (sd {100 * m[c][2]:.2f})" if c in m else "" for c in columns)
        print(name + "," + ",".join(cells) + f",{seeds}")
    for name in means:
        if name.endswith("-bf16") and name[:-5] + "-fp32" in means:
            a, b = means[name[:-5] + "-fp32"], means[name]
            diffs = [f"{c} {100 * (b[c][0] - a[c][0]):+.2f}" for c in columns if c in a and c in b]
            print(f"{name[:-5]}: bf16 - fp32 (points): " + ", ".join(diffs))

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs")
