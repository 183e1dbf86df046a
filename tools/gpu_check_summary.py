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
    try:
        with open(path) as file:
            return json.load(file)
    except FileNotFoundError:
        print(f"  {os.path.basename(path)}: missing (the step did not run or wrote nothing)")
    except (OSError, ValueError) as error:
        print(f"  {os.path.basename(path)}: unreadable ({error})")
    return []


def speedups(folder, precisions=("fp32", "tf32")):
    compared = 0
    for precision in precisions:
        ours_file, theirs_file, label = PAIRS[precision]
        ours = {r["batch"]: r for r in load(os.path.join(folder, ours_file)) if r.get("preset") == "paper"}
        theirs = [r for r in load(os.path.join(folder, theirs_file)) if r.get("status") == "ok"]
        for record in theirs:
            if record["batch"] not in ours:
                continue
            steps = [("", ours[record["batch"]]["seconds_per_iteration"])]
            graph = ours[record["batch"]].get("graph_seconds_per_iteration")
            if isinstance(graph, (int, float)) and graph > 0:
                steps.append((" with --cuda-graph", graph))
            for how, mine in steps:
                speedup = record["seconds_per_iteration"] / mine
                line = (f"{label}: paper batch {record['batch']}: pixgrad{how} {mine * 1e3:.2f} ms/iter, PyTorch "
                        f"{record['mode']} {record['seconds_per_iteration'] * 1e3:.2f} ms/iter: pixgrad is "
                        f"{speedup:.2f}x as fast")
                if record["batch"] == 1 and record["mode"] == "eager":
                    line += f" (goal >= 4x: {'met' if speedup >= 4 else 'not met'})"
                print(line)
                compared += 1
    if compared == 0:
        print("no pair of pixgrad and PyTorch figures to compare")
    return 0


def training(log_path):
    records = []
    with open(log_path) as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("loss_G"), (int, float)):
                records.append(record)
    if not records:
        print(f"{log_path}: no training record")
        return 1
    last = records[-1]
    seconds = last.get("seconds_per_iteration")
    rate = f"{1 / seconds:.1f}" if isinstance(seconds, (int, float)) and seconds > 0 else "?"
    finite = all(isinstance(last.get(k), (int, float)) and math.isfinite(last[k]) for k in ("loss_G", "loss_D"))
    print(f"iteration {last.get('iteration')}: {rate} iterations/s over the last records "
          f"(G {last['loss_G']:.3f}, L1 {last.get('loss_L1', float('nan')):.4f}, D {last.get('loss_D', float('nan')):.4f})"
          + ("" if finite else "  NON-FINITE LOSSES"))
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
