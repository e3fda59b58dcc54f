# Checks, on the CPU, the index arithmetic of src/cuda/sdpa_bwd_sm90.cu (the Hopper backward):
#  1. schedule + masks: the (row, key) pairs whose P the kernel lets through (CTA key blocks,
#     the query tiles each walks, need_mask, the lim0/lim1 thresholds, L = +inf past Sq) are
#     exactly the visible pairs of the reference (causal bottom-right or not), for odd shapes;
#  2. shared-memory layouts: every wgmma descriptor the kernel builds (start, LBO, SBO, K- or
#     MN-major) reads, under the canonical 128-byte-swizzle layouts (CUTLASS's GMMA
#     descriptor docs), the element the TMA boxes / the dS^T stores put at that address.
# The formulas are copied from the kernel by hand: keep them in step. Run: python3 tools/check_sdpa_bwd_sm90.py
import itertools
INT_MAX, INT_MIN = 2**31-1, -2**31
def kernel_pairs(Sq, Sk, causal, BM, BN=128):
    off = Sk - Sq; seen = set()
    for bx in range((Sk + BN - 1)//BN):
        j0 = bx*BN
        ilo = j0 - off if causal and j0 - off > 0 else 0
        tlo = ilo // BM; ntile = (Sq - 1)//BM - tlo + 1
        for t in range(ntile):
            m0 = (tlo + t)*BM
            need = j0 + BN > Sk or (causal and j0 + BN - 1 > m0 + off)
            for cw in range(2):
              for warp in range(4):
                for lane in range(32):
                    g, t4 = lane >> 2, lane & 3
                    kr = 16*warp + g; jg0 = j0 + cw*64 + kr; jg1 = jg0 + 8
                    def lim(jg):
                        return INT_MAX if jg >= Sk else (jg - off - m0 - 2*t4 if causal else INT_MIN)
                    l0, l1 = lim(jg0), lim(jg1)
                    for j in range(BM//8):
                        for e in range(4):
                            i = m0 + 8*j + 2*t4 + (e & 1); key = jg0 if e < 2 else jg1
                            masked = need and (8*j + (e & 1) < (l0 if e < 2 else l1))
                            if i >= Sq: continue   # L = +inf -> P = 0
                            if not masked:
                                assert key < Sk, (Sq, Sk, i, key)
                                seen.add((i, key))
    return seen
def ref_pairs(Sq, Sk, causal):
    off = Sk - Sq
    return {(i, j) for i in range(Sq) for j in range(Sk) if not causal or j <= i + off}
for Sq, Sk in [(77,200),(333,200),(200,333),(77,77),(517,1031),(300,257),(1,1),(130,130),(64,128),(129,383),(7,33),(33,7)]:
    for causal in (False, True):
        for BM in (64, 128):
            k = kernel_pairs(Sq, Sk, causal, BM); r = ref_pairs(Sq, Sk, causal)
            assert k == r, (Sq, Sk, causal, BM, len(k - r), len(r - k))
print("schedule and masks ok")

# (CUTLASS canonical SW128 layouts: K-major ((8,m),(T,2k)):((8T,SBO),(1,T)); MN-major
# ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)); T = 8 elements; swizzle on address bits 4-6 ^ 7-9)
def sw(a): return a ^ (((a >> 7) & 7) << 4)
def tile(base, rows, r, c): return sw(base + (c//64)*rows*128 + r*128 + 2*(c % 64))   # TMA box layout
def kmajor(start, sbo, m, k):  return sw(start + (m//8)*sbo + (m % 8)*128 + 2*k)       # k < 16 per step
def mnmajor(start, lbo, sbo, n, k): return sw(start + (n//64)*lbo + 2*(n % 64) + (k//8)*sbo + (k % 8)*128)
for D, BM in ((64, 128), (128, 64)):
    BN = 128; KV = BN*D*2; QO = BM*D*2; DS = BN*BM*2
    sK, sV, sQ = 0, KV, 2*KV; sO = sQ + 2*QO; sDS = sO + 2*QO
    for st in (0, 1):
        q_s, o_s, ds_b = sQ + st*QO, sO + st*QO, sDS + st*DS
        for cw in (0, 1):
            kA = sK + cw*64*128
            # S^T: A = K_c (m = key-local, k = dim), B = Q (n = query, k = dim), both K-major
            for kk in range(D//16):
                koff, cb = (kk & 3)*32, kk >> 2
                for k in range(16):
                    for m in range(64):
                        assert kmajor(kA + cb*BN*128 + koff, 1024, m, k) == tile(sK, BN, 64*cw + m, 16*kk + k)
                    for n in range(BM):
                        assert kmajor(q_s + cb*BM*128 + koff, 1024, n, k) == tile(q_s, BM, n, 16*kk + k)
            # dV: B = dO (k = query, n = dim), N-major
            for kb in range(BM//16):
                for k in range(16):
                    for n in range(D):
                        assert mnmajor(o_s + kb*2048, BM*128, 1024, n, k) == tile(o_s, BM, 16*kb + k, n)
            # dS^T store: thread (warp, lane), n-tile j, rows kr, kr+8: element (key r, query q)
            stored = {}
            for warp in range(4):
                for lane in range(32):
                    g, t4 = lane >> 2, lane & 3; kr = 16*warp + g; r = cw*64 + kr
                    for j in range(BM//8):
                        a0 = ds_b + (j >> 3)*BN*128 + r*128 + (((j & 7) ^ g) << 4) + 4*t4
                        for dr, a in ((0, a0), (8, a0 + 8*128)):
                            for h in (0, 1):
                                stored[(r + dr, 8*j + 2*t4 + h)] = a + 2*h
            for (r, q), a in stored.items():
                assert a == tile(ds_b, BN, r, q), (r, q)
            # dQ: A = dS (m = query in block mb, k = key), M-major; B = K (k = key, n = dim in block nb)
            mb = cw if BM == 128 else 0; nb = cw if BM == 64 else 0
            for kk in range(BN//16):
                for k in range(16):
                    for m in range(64):
                        assert mnmajor(ds_b + mb*BN*128 + kk*2048, BN*128, 1024, m, k) == tile(ds_b, BN, 16*kk + k, 64*mb + m)
                    for n in range(64):
                        assert mnmajor(sK + nb*BN*128 + kk*2048, BN*128, 1024, n, k) == tile(sK, BN, 16*kk + k, 64*nb + n)
    print("D", D, "ok; both stored dS^T halves cover", len(stored), "per consumer")
