#!/usr/bin/env python3
"""Compares an Autobahn index.json with the committed expected verdicts.

Prints the counts per case group (the table the README shows) and every
case whose verdict or close code differs; exits 1 on any difference or on a
case missing from either side. With --update, rewrites the expected file.
"""

import json
import sys
from collections import Counter

FIELDS = ("behavior", "behaviorClose", "remoteCloseCode")


def group_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: autobahn_compare.py EXPECTED.json INDEX.json [--update]")
    expected_path, index_path = argv[1], argv[2]
    with open(index_path) as f:
        index = json.load(f)
    (actual,) = index.values()  # one agent: our server
    actual = {case: {k: v.get(k) for k in FIELDS} for case, v in actual.items()}

    counts = Counter()
    for case, verdict in actual.items():
        counts[(case.split(".")[0], verdict["behavior"])] += 1
    groups = sorted({g for g, _ in counts}, key=int)
    verdicts = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
    print("| group | " + " | ".join(verdicts) + " |")
    print("|---|" + "---|" * len(verdicts))
    for g in groups:
        print(f"| {g} | " + " | ".join(str(counts[(g, v)] or "") for v in verdicts) + " |")
    totals = Counter(v["behavior"] for v in actual.values())
    print("| all | " + " | ".join(str(totals[v] or "") for v in verdicts) + " |")

    if "--update" in argv:
        ordered = {case: actual[case] for case in sorted(actual, key=group_key)}
        with open(expected_path, "w") as f:
            json.dump(ordered, f, indent=1)
            f.write("\n")
        print(f"wrote {len(ordered)} expected verdicts to {expected_path}")
        return 0

    with open(expected_path) as f:
        expected = json.load(f)
    problems = []
    for case in sorted(set(expected) | set(actual), key=group_key):
        if case not in actual:
            problems.append(f"{case}: expected {expected[case]}, but it did not run")
        elif case not in expected:
            problems.append(f"{case}: ran ({actual[case]}) but is not in {expected_path}")
        elif actual[case] != expected[case]:
            problems.append(f"{case}: expected {expected[case]}, got {actual[case]}")
    if problems:
        print(f"\n{len(problems)} case(s) differ from {expected_path}:")
        for p in problems:
            print("  " + p)
        return 1
    print(f"\nall {len(actual)} Autobahn cases match {expected_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
