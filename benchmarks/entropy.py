"""Benchmark of the rANS coder against constriction on a hyperprior-like source.

One million integers, each drawn from a rounded Gaussian whose scale is one of 64 values
log-spaced from 0.11 to 64 (as a hyperprior's scale tables are). Both coders get the same
integer frequency tables (precision 16). Prints sizes, speeds and ratios; with ``--json``
the last line is one JSON object with the figures.

    python benchmarks/entropy.py [--json] [--n 1000000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import norm

from nicbook.entropy import FrequencyTables, decode_uvarint, rans_decode, rans_encode

N_SCALES = 64
TAIL_SIGMAS = 6.0  # tables cover +-6 scales; rarer values take the escape path
PRECISION = 16
SEED = 2024


def gaussian_pmf(values: np.ndarray, scale: float) -> np.ndarray:
    """Probability of each integer under a Gaussian of ``scale`` rounded to integers."""
    return norm.sf((np.abs(values) - 0.5) / scale) - norm.sf((np.abs(values) + 0.5) / scale)


def make_source(n: int) -> tuple[np.ndarray, np.ndarray, FrequencyTables, np.ndarray]:
    """Values, table indices, tables and float probabilities of each value."""
    rng = np.random.default_rng(SEED)
    scales = np.geomspace(0.11, 64.0, N_SCALES)
    table_of = rng.integers(0, N_SCALES, n)
    values = np.rint(rng.normal(0.0, scales[table_of])).astype(np.int64)
    half_widths = np.ceil(TAIL_SIGMAS * scales).astype(np.int64)
    pmfs = [gaussian_pmf(np.arange(-w, w + 1), s) for w, s in zip(half_widths, scales)]
    tables = FrequencyTables.from_pmfs(pmfs, -half_widths, PRECISION)
    p_float = gaussian_pmf(values, scales[table_of])
    return values, table_of, tables, p_float


def best_time(function, repeats: int = 3) -> tuple[float, object]:
    """Fastest wall time of ``repeats`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_constriction(values, table_of, tables) -> dict:
    """Code the same message with constriction's ANS coder and the same integer tables."""
    try:
        import constriction
    except ImportError:
        return {"message": "constriction is not installed"}
    Categorical = constriction.stream.model.Categorical
    scale = float(1 << tables.precision)
    # Probabilities f / 2**16 are exact in float64, so constriction's 24-bit tables are f * 2**8.
    models = [Categorical(tables.table(t) / scale, perfect=False) for t in range(tables.num_tables)]
    symbols = tables.symbols(values, table_of).astype(np.int32)
    order = np.argsort(table_of, kind="stable")
    bounds = np.searchsorted(table_of[order], np.arange(tables.num_tables + 1))
    groups = [symbols[order[bounds[t] : bounds[t + 1]]] for t in range(tables.num_tables)]

    def encode():
        coder = constriction.stream.stack.AnsCoder()
        for t in reversed(range(tables.num_tables)):  # a stack: decoded in the opposite order
            coder.encode_reverse(groups[t], models[t])
        return coder.get_compressed()

    def decode(compressed):
        coder = constriction.stream.stack.AnsCoder(compressed)
        return [coder.decode(models[t], len(groups[t])) for t in range(tables.num_tables)]

    encode_s, compressed = best_time(encode)
    decode_s, decoded = best_time(lambda: decode(compressed))
    assert all(np.array_equal(d, g) for d, g in zip(decoded, groups)), "constriction round trip failed"
    n = values.size
    return {"bits": 32 * int(compressed.size), "encode": n / encode_s / 1e6, "decode": n / decode_s / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    parser.add_argument("--n", type=int, default=1_000_000, help="number of symbols")
    args = parser.parse_args()

    values, table_of, tables, p_float = make_source(args.n)
    info_float = float(-np.log2(p_float).sum())
    info_int = float(tables.information_bits(values, table_of).sum())
    encode_s, data = best_time(lambda: rans_encode(values, table_of, tables))
    decode_s, decoded = best_time(lambda: rans_decode(data, table_of, tables))
    assert np.array_equal(decoded, values), "nicbook round trip failed"
    lanes = decode_uvarint(data)[0]  # the stream starts with its lane count
    n = args.n
    ours = {"bits": 8 * len(data), "encode": n / encode_s / 1e6, "decode": n / decode_s / 1e6}
    theirs = run_constriction(values, table_of, tables)

    print(f"{n} symbols, {tables.num_tables} Gaussian tables (scales 0.11..64), precision {tables.precision}")
    print(f"information, float model:   {info_float:12.0f} bits ({info_float / n:.4f} bits/symbol)")
    print(f"information, integer model: {info_int:12.0f} bits ({info_int / n:.4f} bits/symbol)")
    print(
        f"nicbook rANS ({lanes} lanes):  {ours['bits']:12d} bits, "
        f"{ours['bits'] / info_int - 1:+.4%} vs integer model, {ours['bits'] / info_float - 1:+.4%} vs float model; "
        f"encode {ours['encode']:.1f} M symbols/s, decode {ours['decode']:.1f} M symbols/s"
    )
    if "bits" in theirs:
        print(
            f"constriction AnsCoder:       {theirs['bits']:12d} bits, "
            f"encode {theirs['encode']:.1f} M symbols/s, decode {theirs['decode']:.1f} M symbols/s"
        )
        print(
            f"nicbook / constriction: size {ours['bits'] / theirs['bits']:.4f}, "
            f"encode speed {ours['encode'] / theirs['encode']:.2f}, decode speed {ours['decode'] / theirs['decode']:.2f}"
        )
    else:
        print(f"constriction: absent ({theirs['message']})")
    if args.json:
        print(
            json.dumps(
                {
                    "n_symbols": n,
                    "lanes": lanes,
                    "info_bits_float": round(info_float, 1),
                    "info_bits_int": round(info_int, 1),
                    "nicbook_bits": ours["bits"],
                    "nicbook_encode_msym_s": round(ours["encode"], 2),
                    "nicbook_decode_msym_s": round(ours["decode"], 2),
                    "constriction_bits": theirs.get("bits"),
                    "constriction_encode_msym_s": round(theirs["encode"], 2) if "bits" in theirs else None,
                    "constriction_decode_msym_s": round(theirs["decode"], 2) if "bits" in theirs else None,
                    **({"constriction_message": theirs["message"]} if "message" in theirs else {}),
                }
            )
        )


if __name__ == "__main__":
    main()
