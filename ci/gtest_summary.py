#!/usr/bin/env python3
"""Per-Highway-target summary of a q6bit GoogleTest run, from its XML report.

The kernel suite is parametrized over every compiled Highway target, so each
parametrized test's name ends in /TARGET (e.g. "NonFiniteScales/AVX3_DL"). A
target the CPU cannot run is GTEST_SKIPped by the suite; it is reported here
as SKIPPED, never as passed.

  gtest_summary.py report XML [--name TEMPLATE] [--require T1,T2] [--exit-code N]
      One line per target, e.g. "x86_64 AVX2: 4 tests run, 4 passed", plus one
      for the target-independent tests. TEMPLATE formats the line's label,
      {target} being the target name (default "{target}"). Exits non-zero if a
      test failed, the XML is missing or malformed (the binary crashed), a
      --require'd target did not run and pass, or --exit-code (the test
      binary's own exit status) is non-zero.

  gtest_summary.py coverage LABEL --run CONFIG XML [--run CONFIG XML ...]
      Checks that every target compiled into the binaries passed in at least
      one of the runs (e.g. one per emulated CPU) and prints which runs did.

Standard library only: it runs wherever the C++ tests run.
"""

import argparse
import os
import sys
import xml.etree.ElementTree as ET

# Target-independent tests are reported under this pseudo-target.
GENERAL = "target-independent"


def message_text(element):
    """A gtest failure/skip message without its leading "file:line" line."""
    lines = [line.strip() for line in (element.get("message") or "").splitlines()]
    if len(lines) > 1 and ":" in lines[0] and lines[0].rsplit(":", 1)[1].isdigit():
        lines = lines[1:]
    return " ".join(line for line in lines if line)


def load(xml_path):
    """{target: {"run": n, "passed": [...], "failed": [...], "skipped": [...],
    "skip_reasons": set(), "messages": [...]}} from a gtest XML report.
    Raises ValueError if the report is missing or unreadable."""
    if not os.path.exists(xml_path) or os.path.getsize(xml_path) == 0:
        raise ValueError(f"no XML report at {xml_path} (did the test binary crash?)")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"unreadable XML report {xml_path}: {e}") from e
    targets = {}
    for case in root.iter("testcase"):
        name, suite = case.get("name", ""), case.get("classname", "")
        # Parametrized cases carry value_param; their name ends in /TARGET.
        if case.get("value_param") is not None and "/" in name:
            test, target = name.rsplit("/", 1)
        else:
            test, target = name, GENERAL
        full = f"{suite}.{test}"
        t = targets.setdefault(
            target,
            {
                "run": 0,
                "passed": [],
                "failed": [],
                "skipped": [],
                "skip_reasons": set(),
                "messages": [],
            },
        )
        if case.get("status") == "notrun":  # DISABLED_ tests
            continue
        failures = case.findall("failure") + case.findall("error")
        skipped = case.find("skipped")
        if failures:
            t["run"] += 1
            t["failed"].append(full)
            t["messages"] += [f"{full}: {message_text(f)}" for f in failures]
        elif skipped is not None or case.get("result") == "skipped":
            t["skipped"].append(full)
            t["skip_reasons"].add(message_text(skipped) if skipped is not None else "")
        else:
            t["run"] += 1
            t["passed"].append(full)
    if not targets:
        raise ValueError(f"{xml_path} lists no test cases")
    return targets


def target_ok(t):
    return t["run"] > 0 and not t["failed"] and not t["skipped"]


def describe(t):
    """'4 tests run, 4 passed' / 'SKIPPED (reason)' / '... FAILED: names'."""

    def plural(n, word):
        return f"{n} {word}{'' if n == 1 else 's'}"

    if t["run"] == 0 and t["skipped"]:
        reasons = "; ".join(sorted(r for r in t["skip_reasons"] if r)) or "CPU lacks it"
        return f"SKIPPED ({reasons}; {plural(len(t['skipped']), 'test')} not run)"
    text = f"{plural(t['run'], 'test')} run, {len(t['passed'])} passed"
    if t["skipped"]:
        text += f", {len(t['skipped'])} skipped"
    if t["failed"]:
        text += f", {len(t['failed'])} FAILED: " + ", ".join(t["failed"])
    return text


def order(targets):
    # Targets in the order the binary ran them (best first), general last.
    return [k for k in targets if k != GENERAL] + ([GENERAL] if GENERAL in targets else [])


def report(args):
    label = args.name
    try:
        targets = load(args.xml)
    except ValueError as e:
        print(f"{label.format(target='?')}: ERROR: {e}")
        return 1
    ok = True
    for target in order(targets):
        t = targets[target]
        print(f"{label.format(target=target)}: {describe(t)}")
        for message in t["messages"][:10]:
            print(f"    {message[:300]}")
        ok &= not t["failed"]
    for target in filter(None, (args.require or "").split(",")):
        if target not in targets or not target_ok(targets[target]):
            print(
                f"{label.format(target=target)}: ERROR: required to run and pass here, but "
                + ("it is not compiled in" if target not in targets else "it did not")
            )
            ok = False
    if args.exit_code:
        print(
            f"{label.format(target='*')}: ERROR: the test binary exited with status "
            f"{args.exit_code}"
        )
        ok = False
    return 0 if ok else 1


def coverage(args):
    passed_in, compiled = {}, []
    for config, xml_path in args.run:
        try:
            targets = load(xml_path)
        except ValueError as e:
            print(f"{args.label}: ERROR: {config}: {e}")
            return 1
        for target, t in targets.items():
            if target == GENERAL:
                continue
            if target not in compiled:
                compiled.append(target)
            if target_ok(t):
                passed_in.setdefault(target, []).append(config)
    ok = True
    for target in compiled:
        if target in passed_in:
            print(f"{args.label} {target}: passed under " + "; ".join(passed_in[target]))
        else:
            print(f"{args.label} {target}: ERROR: compiled in but passed in no run")
            ok = False
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="one line per target of one run")
    r.add_argument("xml")
    r.add_argument("--name", default="{target}", help="line label, {target} = target name")
    r.add_argument("--require", help="comma-separated targets that must run and pass")
    r.add_argument("--exit-code", type=int, default=0, help="the test binary's exit status")
    r.set_defaults(func=report)
    c = sub.add_parser("coverage", help="every compiled target passed in some run")
    c.add_argument("label")
    c.add_argument(
        "--run",
        nargs=2,
        action="append",
        required=True,
        metavar=("CONFIG", "XML"),
        help="one run: its label and XML report",
    )
    c.set_defaults(func=coverage)
    args = parser.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
