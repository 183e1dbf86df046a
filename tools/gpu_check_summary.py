#!/usr/bin/env python3
"""Summaries printed by tools/gpu_check.sh (standard library only).

  speedups FOLDER [PRECISION ...]
                    pixgrad's training step against PyTorch's at equal
                    precision: fp32 (bench_pix2pix.json with bench_torch.json,
                    TF32 off), tf32 (bench_pix2pix_tf32.json with
                    bench_torch_tf32.json, TF32 allowed in both) and bf16
                    (bench_pix2pix_bf16.json with bench_torch_bf16.json,
                    PyTorch under autocast); fp32 and tf32 when none is
                    named. pixgrad's eager step and, where it was measured,
                    its step replayed as a CUDA graph (--cuda-graph) are
                    each compared. Files that are missing or cut short are
                    said to be so.
  training LOG      iterations/s and the last losses of a train_pix2pix log.jsonl.
"""

import json
import math
import os
import sys

PAIRS = {"fp32": ("bench_pix2pix.json", "bench_torch.json", "FP32"),
         "tf32": ("bench_pix2pix_tf32.json", "bench_torch_tf32.json", "TF32 allowed"),
         "bf16": ("bench_pix2pix_bf16.json", "bench_torch_bf16.json", "bf16")}


def load(path):
    """The records (JSON objects) of a benchmark's list; anything else is said and left out."""
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        print(f"  {name}: missing (the step did not run or wrote nothing)")
        return []
    except (OSError, ValueError, RecursionError) as error:
        print(f"  {name}: unreadable ({type(error).__name__}: {str(error)[:200]})")
        return []
    if not isinstance(data, list):
        print(f"  {name}: not a list of records")
        return []
    records = [r for r in data if isinstance(r, dict)]
    if len(records) != len(data):
        print(f"  {name}: {len(data) - len(records)} entries that are not records left out")
    return records


def finite_number(value):
    """value as a finite float, or None (booleans, strings, NaN, infinities and
    integers too large for a float are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def seconds_of(record, key):
    """record[key] as a plausible time in seconds (1 ns to 10^6 s), or None."""
    seconds = finite_number(record.get(key))
    return seconds if seconds is not None and 1e-9 <= seconds <= 1e6 else None


def speedups(folder, precisions=("fp32", "tf32")):
    compared = 0
    for precision in precisions:
        ours_file, theirs_file, label = PAIRS[precision]
        ours = {r.get("batch"): r for r in load(os.path.join(folder, ours_file))
                if r.get("preset") == "paper" and isinstance(r.get("batch"), int)}
        theirs = [r for r in load(os.path.join(folder, theirs_file)) if r.get("status") == "ok"]
        for record in theirs:
            batch, mode = record.get("batch"), record.get("mode")
            if not isinstance(batch, int) or batch not in ours:
                continue
            torch_seconds = seconds_of(record, "seconds_per_iteration")
            steps = [("", seconds_of(ours[batch], "seconds_per_iteration")),
                     (" with --cuda-graph", seconds_of(ours[batch], "graph_seconds_per_iteration"))]
            for how, mine in steps:
                if mine is None and how:
                    continue  # not measured
                if mine is None or torch_seconds is None:
                    print(f"{label}: paper batch {batch}: pixgrad{how} against PyTorch {mode}: no valid time "
                          "(missing, zero, negative or not a number)")
                    continue
                speedup = torch_seconds / mine
                line = (f"{label}: paper batch {batch}: pixgrad{how} {mine * 1e3:.2f} ms/iter, PyTorch "
                        f"{mode} {torch_seconds * 1e3:.2f} ms/iter: pixgrad is {speedup:.2f}x as fast")
                if batch == 1 and mode == "eager":
                    line += f" (goal >= 4x: {'met' if speedup >= 4 else 'not met'})"
                print(line)
                compared += 1
    if compared == 0:
        print("no pair of pixgrad and PyTorch figures to compare")
    return 0


def number_text(value, digits):
    number = finite_number(value)
    return f"{number:.{digits}f}" if number is not None else str(value)[:40] if isinstance(value, float) else "?"


def training(log_path):
    records = []
    try:
        with open(log_path, encoding="utf-8", errors="replace") as file:
            for line in file:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(record, dict) and isinstance(record.get("loss_G"), (int, float)):
                    records.append(record)
    except OSError as error:
        print(f"{log_path}: unreadable ({error})")
        return 1
    if not records:
        print(f"{log_path}: no training record")
        return 1
    last = records[-1]
    seconds = seconds_of(last, "seconds_per_iteration")
    rate = f"{1 / seconds:.1f}" if seconds else "?"
    finite = all(finite_number(last.get(k)) is not None for k in ("loss_G", "loss_D"))
    print(f"iteration {last.get('iteration')}: {rate} iterations/s over the last records "
          f"(G {number_text(last['loss_G'], 3)}, L1 {number_text(last.get('loss_L1'), 4)}, "
          f"D {number_text(last.get('loss_D'), 4)})" + ("" if finite else "  NON-FINITE LOSSES"))
    return 0 if finite else 1


def main(argv):
    if argv[1:2] == ["speedups"] and len(argv) >= 3 and all(p in PAIRS for p in argv[3:]):
        return speedups(argv[2], argv[3:] or ("fp32", "tf32"))
    if argv[1:2] == ["training"] and len(argv) == 3:
        return training(argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
