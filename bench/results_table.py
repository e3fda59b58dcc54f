"""results_table.py - merges bk_bench.csv and torch.csv of one `make bench` run into the
markdown table kept in bench/RESULTS.md: per row our time and rate, % of the measured
ceiling, and for the sdpa rows torch's cuDNN and FlashAttention-2 rates with our ratio.

Usage: python3 bench/results_table.py BENCH_OUT_DIR
"""
import csv
import sys


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build-gpu/bench"
    ours, peers, ceilings = [], {}, {}
    with open(f"{out}/bk_bench.csv") as f:
        for r in csv.reader(f):
            if r[0] == "ceiling":
                ceilings[r[1]] = f"{float(r[3]):.0f} {r[4]}"
            else:
                ours.append(r)
    try:
        with open(f"{out}/torch.csv") as f:
            for r in csv.reader(f):
                peers.setdefault(r[0], {})[r[1]] = float(r[3])
    except FileNotFoundError:
        pass
    print(f"ceilings measured in this run: copy {ceilings.get('copy', '?')}, "
          f"cuBLAS bf16 GEMM {ceilings.get('bf16 gemm', '?')}\n")
    print("| op / shape | kernel | ms | rate | % ceiling | torch cuDNN | torch flash2 | ours / cuDNN | ours / flash2 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, sku, ms, rate, unit, pct in ours:
        if sku == "unsupported":
            print(f"| {name} | unsupported | | | | | | | |")
            continue
        p = peers.get(name, {})
        cu, fl = p.get("torch/cudnn"), p.get("torch/flash2")
        rv = float(rate)
        print(f"| {name} | {sku} | {float(ms):.3f} | {rv:.1f} {unit} | {float(pct):.1f}% | "
              f"{f'{cu:.1f}' if cu else ''} | {f'{fl:.1f}' if fl else ''} | "
              f"{f'{rv / cu:.2f}' if cu else ''} | {f'{rv / fl:.2f}' if fl else ''} |")


if __name__ == "__main__":
    main()
