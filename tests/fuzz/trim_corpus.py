#!/usr/bin/env python3
"""Keeps the few hundred inputs of a fuzz corpus that cover the most edges.

`cargo fuzz cmin` (libFuzzer's -merge=1) keeps every input that adds a feature, which for the
`chain` and `config` targets is still well over a thousand files. This reads the merge control
file of such a run and keeps, greedily, the input that covers the most edges not yet covered,
up to LIMIT inputs (about 95 % of the edges at 300 for `chain`):

    B=tests/fuzz/target/x86_64-unknown-linux-gnu/release
    mkdir -p /tmp/m && $B/chain -merge=1 -use_counters=0 -merge_control_file=/tmp/chain.ctl \
        /tmp/m tests/fuzz/corpus/chain /tmp/new-finds
    python3 tests/fuzz/trim_corpus.py /tmp/chain.ctl /tmp/chain-min 300
    rm -r tests/fuzz/corpus/chain && mv /tmp/chain-min tests/fuzz/corpus/chain

Usage: trim_corpus.py CONTROL_FILE OUT_DIR [LIMIT]
"""
import sys, os, shutil
ctl, outdir = sys.argv[1], sys.argv[2]
lines = open(ctl).read().split('\n')
n = int(lines[0]); files = lines[2:2+n]
cov = {}
cur = None
for l in lines[2+n:]:
    p = l.split()
    if not p: continue
    if p[0] == 'STARTED': cur = int(p[1])
    elif p[0] == 'COV': cov[int(p[1])] = set(map(int, p[2:]))
universe = set().union(*cov.values()) if cov else set()
left = set(universe); chosen = []
LIMIT = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
while left and len(chosen) < LIMIT:
    best = max(cov, key=lambda i: (len(cov[i] & left), -os.path.getsize(files[i])))
    gain = cov[best] & left
    if not gain: break
    chosen.append(best); left -= gain
os.makedirs(outdir, exist_ok=True)
for i in chosen:
    shutil.copy(files[i], os.path.join(outdir, os.path.basename(files[i])))
print(len(universe), "edges,", len(universe) - len(left), "covered by", len(chosen), "files")
