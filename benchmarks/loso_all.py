"""Every registered family x several seeds under the full 68-fold LOSO, with a summary table.

    python benchmarks/loso_all.py --data $MESTREAM_ASSETS/preprocessed/HTNet_MEGC2019_composite \
        --labels $MESTREAM_ASSETS/annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv \
        --out runs/loso_all [--families ststnet msmt] [--seeds 0 1 2] [--workers 16]

Each run goes through `mestream train` itself (trainer.commands.train.run), so OUT/<family>-s<seed>/ holds
the same report.json, tables and figures as the CLI writes. OUT/summary.json and OUT/summary.md give Full
and per-part UF1/UAR per seed, their mean and spread (population std and min-max), and the wall time.
Long: hours for all families on a 2-core CPU; use --workers on a machine with more cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.commands import train as train_command  # noqa: E402
from trainer.models.registry import FAMILIES  # noqa: E402

PARTS = ("full", "casme2", "smic", "samm")


def summarise(runs: dict[str, dict[int, dict]]) -> dict:
    summary = {}
    for family, by_seed in runs.items():
        entry = {"seeds": sorted(by_seed), "parts": {}, "seconds": {s: r["time"]["seconds"] for s, r in by_seed.items()}}
        for part in PARTS:
            for metric in ("uf1", "uar"):
                values = np.array([r["parts"][part][metric] for r in by_seed.values() if part in r["parts"]])
                if len(values):
                    entry["parts"].setdefault(part, {})[metric] = {
                        "mean": float(values.mean()), "std": float(values.std()),
                        "min": float(values.min()), "max": float(values.max()),
                        "per_seed": [float(v) for v in values],
                    }
        entry["selection"] = next(iter(by_seed.values()))["selection"]
        summary[family] = entry
    return summary


def markdown(summary: dict, command: str) -> str:
    lines = ["# LOSO on the MEGC2019 composite (442 samples, 68 subjects), mean ± std over seeds", "",
             f"Command: `{command}`", "",
             "| family | seeds | Full UF1 | Full UAR | CASME II UF1 | SMIC UF1 | SAMM UF1 | s per run |",
             "|---|---|---|---|---|---|---|---|"]
    for family, e in summary.items():
        def cell(part, m, e=e):
            return f"{e['parts'][part][m]['mean']:.4f} ± {e['parts'][part][m]['std']:.4f}" if part in e["parts"] else "-"

        seconds = np.mean(list(e["seconds"].values()))
        lines.append(f"| {family} | {','.join(map(str, e['seeds']))} | {cell('full', 'uf1')} | {cell('full', 'uar')} | "
                     f"{cell('casme2', 'uf1')} | {cell('smic', 'uf1')} | {cell('samm', 'uf1')} | {seconds:.0f} |")
    lines += ["", "Per-part UAR and per-seed values are in summary.json; each run's report is in <family>-s<seed>/."]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, runs: dict[str, dict[int, dict]], argv: list[str] | None) -> None:
    summary = summarise(runs)
    command = "python benchmarks/loso_all.py " + " ".join(sys.argv[1:] if argv is None else argv)
    (out / "summary.json").write_text(json.dumps(
        {"command": command, "cpu_count": os.cpu_count(), "families": summary}, indent=2))
    (out / "summary.md").write_text(markdown(summary, command))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--folds", type=int, default=None, help="first K subjects only (quick check)")
    parser.add_argument("--epochs", type=int, default=None, help="override every family's epochs (recorded)")
    parser.add_argument("--au-sheets", type=Path, default=None)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--resume", action="store_true",
                        help="keep a run whose OUT/<family>-s<seed>/report.json already exists (same seed, same numbers)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train_parser = argparse.ArgumentParser(prog="mestream train")
    train_command.add_arguments(train_parser)
    runs: dict[str, dict[int, dict]] = {}
    for family in args.families:
        for seed in args.seeds:
            out = args.out / f"{family}-s{seed}"
            if args.resume and (out / "report.json").is_file():
                runs.setdefault(family, {})[seed] = json.loads((out / "report.json").read_text())
                print(f"{family} seed {seed}: kept {out / 'report.json'}", flush=True)
                write_summary(args.out, runs, argv)
                continue
            # the CLI's own parser, so every option the job has gets its default
            argv_run = ["--model", family, "--dataset", "megc2019", "--data", str(args.data), "--labels",
                        str(args.labels), "--seed", str(seed), "--out", str(out), "--workers", str(args.workers),
                        "--device", args.device, "--cache", str(args.out / ".mestream-cache")]
            for flag, value in (("--au-sheets", args.au_sheets), ("--epochs", args.epochs), ("--folds", args.folds)):
                if value is not None:
                    argv_run += [flag, str(value)]
            run_args = train_parser.parse_args(argv_run)
            start, load_before = time.perf_counter(), os.getloadavg()
            train_command.run(run_args)
            report = json.loads((out / "report.json").read_text())
            report["time"]["load_average"] = {"before": [round(x, 2) for x in load_before],
                                              "after": [round(x, 2) for x in os.getloadavg()]}
            (out / "report.json").write_text(json.dumps(report, indent=2))
            runs.setdefault(family, {})[seed] = report
            print(f"{family} seed {seed}: {time.perf_counter() - start:.0f} s, load average {load_before} -> "
                  f"{os.getloadavg()}", flush=True)
            write_summary(args.out, runs, argv)  # after every run, so a cut-off sweep still leaves a table
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
