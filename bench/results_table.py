"""results_table.py - merges the CSVs of one `make bench` run (bk_bench.csv, and the peers'
torch.csv, flashinfer.csv and mamba.csv when present) into the markdown tables kept in
bench/RESULTS.md: per row our time and rate, % of the measured ceiling, each peer's rate (in the
row's unit) with our ratio to it, and our ratio to the best peer of the row.

Rows are grouped by op (sdpa_fwd, paged_decode, ...); consecutive ops compared with the same
peers share one table, so each table has only the peer columns its rows use:
sdpa rows torch cuDNN / flash2, paged_prefill FlashInfer fa3 / fa2, paged_decode FlashInfer
(CUDA cores) / FlashInfer tc (tensor cores), ssd_fwd / ssd_bwd / ssd_step mamba_ssm.

Usage: python3 bench/results_table.py BENCH_OUT_DIR
"""
import csv
import sys

# CSVs of peer rows: name,label,ms,rate,unit,  (label as written by the peer script)
PEER_FILES = ["torch.csv", "flashinfer.csv", "mamba.csv"]
# label -> (rate column title, short name for the ratio columns); others are shown as written
TITLES = {
    "torch/cudnn": ("torch cuDNN", "cuDNN"),
    "torch/flash2": ("torch flash2", "flash2"),
    "flashinfer/fa3": ("FlashInfer fa3", "fa3"),
    "flashinfer/fa2": ("FlashInfer fa2", "fa2"),
    "flashinfer/decode": ("FlashInfer", "FlashInfer"),
    "flashinfer/decode-tc": ("FlashInfer tc", "FlashInfer tc"),
    "mamba_ssm": ("mamba_ssm (Triton)", "mamba"),
}


def title(label):
    return TITLES.get(label, (label, label))[0]


def short(label):
    return TITLES.get(label, (label, label))[1]


def fmt(x, spec):
    return format(x, spec) if x is not None else ""


def read_peers(out):
    peers = {}  # row name -> {label: rate}
    for fname in PEER_FILES:
        try:
            with open(f"{out}/{fname}") as f:
                for r in csv.reader(f):
                    if len(r) < 4 or not r[3]:
                        continue
                    try:
                        rate = float(r[3])
                    except ValueError:
                        continue
                    if rate > 0:
                        peers.setdefault(r[0], {})[r[1]] = rate
        except FileNotFoundError:
            pass
    return peers


def op_of(name):
    return name.split(" ", 1)[0]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build-gpu/bench"
    ours, ceilings = [], {}
    with open(f"{out}/bk_bench.csv") as f:
        for r in csv.reader(f):
            if not r:
                continue
            if r[0] == "ceiling":
                ceilings[r[1]] = f"{float(r[3]):.0f} {r[4]}"
            else:
                ours.append((r + [""] * 6)[:6])
    peers = read_peers(out)

    # each op's peer columns: every label any of its rows has, in first-seen order
    op_labels = {}
    for name, *_ in ours:
        labels = op_labels.setdefault(op_of(name), [])
        for label in peers.get(name, {}):
            if label not in labels:
                labels.append(label)
    # tables: runs of consecutive rows whose ops have the same peer columns
    tables = []
    for r in ours:
        labels = op_labels[op_of(r[0])]
        if tables and tables[-1][0] == labels:
            tables[-1][1].append(r)
        else:
            tables.append((labels, [r]))

    print(f"ceilings measured in this run: copy {ceilings.get('copy', '?')} (read + write), "
          f"read-only {ceilings.get('read', '?')}, cuBLAS bf16 GEMM {ceilings.get('bf16 gemm', '?')}; "
          f"% ceiling is of the GEMM for TFLOP/s rows, of the read-only stream for paged_decode, "
          f"of the copy for the other GB/s rows")
    for labels, rows in tables:
        head = ["op / shape", "kernel", "ms", "rate", "% ceiling"]
        head += [title(label) for label in labels] + [f"ours / {short(label)}" for label in labels]
        if labels:
            head.append("ours / best peer")
        print()
        if labels:
            print(f"peers: {', '.join(title(l) for l in labels)} (rates in the row's unit)\n")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for name, sku, ms, rate, unit, pct in rows:
            if sku == "unsupported" or not rate:
                print("| " + " | ".join([name, "unsupported"] + [""] * (len(head) - 2)) + " |")
                continue
            rv = float(rate)
            cells = [name, sku, f"{float(ms):.3f}", f"{rv:.1f} {unit}", f"{float(pct):.1f}%" if pct else ""]
            p = peers.get(name, {})
            cells += [fmt(p.get(label), ".1f") for label in labels]
            cells += [fmt(rv / p[label] if label in p else None, ".2f") for label in labels]
            if labels:
                best = max(p.items(), key=lambda kv: kv[1]) if p else None
                cells.append(f"{rv / best[1]:.2f} ({short(best[0])})" if best else "")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
