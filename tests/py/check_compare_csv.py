"""Load the compare page's tidy CSV (/compare.long.csv) with pandas, as a researcher would,
and check its columns, dtypes and the rows the Rust test wrote fixtures for.

Usage: check_compare_csv.py <file.csv>; prints "ok" or fails with the reason.
"""

import math
import sys

import pandas as pd

COLUMNS = ["group", "method", "metric", "class", "suite", "checkpoint", "attack",
           "mean", "std", "n", "inputs"]


def one(df, **want):
    rows = df
    for k, v in want.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, f"one row for {want}, got {len(rows)}:\n{rows}"
    return rows.iloc[0]


def main(path):
    df = pd.read_csv(path)
    assert list(df.columns) == COLUMNS, list(df.columns)
    assert df["mean"].dtype == "float64", df["mean"].dtype
    assert df["std"].dtype == "float64", df["std"].dtype
    assert df["n"].dtype == "int64", df["n"].dtype
    for c in ["group", "method", "metric", "class", "suite", "checkpoint", "attack"]:
        # object before pandas 3, a string dtype from pandas 3 on.
        text = df[c].dtype == object or pd.api.types.is_string_dtype(df[c])
        assert text and df[c].notna().all(), (c, df[c].dtype)
    fair, at = "fmnist-quick-fairtat", "fmnist-quick-at"

    r = one(df, group=fair, metric="robust_overall", **{"class": "all"})
    assert r["method"] == "fair-tat" and r["n"] == 2, r
    assert abs(r["mean"] - 0.375) < 1e-9 and abs(r["std"] - math.sqrt(0.00125)) < 1e-9, r
    # The cancelled seed of PGD-AT is left out: one run, no spread.
    r = one(df, group=at, metric="robust_overall", **{"class": "all"})
    assert r["n"] == 1 and math.isnan(r["std"]) and "left out" in r["inputs"], r

    # A quick AutoAttack and a standard one never share a row.
    r = one(df, group=fair, metric="overall", attack="autoattack-quick")
    assert (r["suite"], r["checkpoint"], r["n"]) == ("quick", "last", 2), r
    r = one(df, group=at, metric="overall", attack="autoattack")
    assert (r["suite"], r["checkpoint"], r["n"]) == ("standard", "last", 1), r
    assert df[(df["group"] == fair) & (df["attack"] == "autoattack")].empty

    # Per-class rows and the default difference, FAIR-TAT minus PGD-AT, with its seed spread.
    r = one(df, group=fair, metric="class_robust", **{"class": "cat"})
    assert abs(r["mean"] - 0.5) < 1e-9 and r["n"] == 2, r
    r = one(df, group=f"{fair} minus {at}", metric="diff_class_robust", **{"class": "cat"})
    assert r["method"] == "fair-tat minus pgd-at", r
    assert abs(r["mean"] + 0.2) < 1e-9 and abs(r["std"] - math.sqrt(0.02)) < 1e-9, r
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
