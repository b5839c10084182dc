"""Benchmark of the rANS coder: its cost against the information content on matched and
mismatched sources, and its speed against constriction's ANS coder, timed alternately.

Sources (each coded and decoded, the round trip checked):

- ``bernoulli``: Bernoulli(0.1) symbols coded with the tables of P(1) = 0.01 … 0.9 (the wrong
  model of chapter 2's exercise), 10⁵ and 10⁶ symbols;
- ``laplace``: 10⁶ rounded Laplace(3) values, one table (the speed source);
- ``hyperprior``: 10⁶ rounded Gaussians, each with one of 64 tables (scales 0.11 … 64, as a
  hyperprior's scale tables are);
- ``neural``: the latents of kodim01–04 at quality 4 with the shipped factorized model's tables
  (the codec's static version 5; skipped without the Kodak images), also against the model's
  own float estimate ``-Σ log2 P``.

For each: the stream's size against the information content ``-log2(f / 2**precision)`` under
its integer tables (``deviation``), its lanes, and its overhead in bits. Speeds (million symbols
per second) are the median of ``--repeats`` runs, nicbook and constriction (same integer tables,
constriction's decode timed including putting values back in message order) alternating call by
call. With ``--json`` the last line is one JSON object with every figure.

    python benchmarks/entropy.py [--json] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import norm

from nicbook.entropy import FrequencyTables, decode_uvarint, rans_decode, rans_encode
from timing import alternate

PRECISION = 16
SEED = 2024
BERNOULLI_P = 0.1
WRONG_P = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.9)


def gaussian_pmf(values: np.ndarray, scale: float) -> np.ndarray:
    """Probability of each integer under a Gaussian of ``scale`` rounded to integers."""
    return norm.sf((np.abs(values) - 0.5) / scale) - norm.sf((np.abs(values) + 0.5) / scale)


def laplace_source(n: int) -> tuple[np.ndarray, np.ndarray, FrequencyTables]:
    rng = np.random.default_rng(SEED)
    support = np.arange(-60, 61)
    tables = FrequencyTables.from_pmfs([np.exp(-np.abs(support) / 3.0)], [-60])
    values = np.rint(rng.laplace(0.0, 3.0, n)).astype(np.int64)
    return values, np.zeros(n, dtype=np.int64), tables


def hyperprior_source(n: int) -> tuple[np.ndarray, np.ndarray, FrequencyTables]:
    rng = np.random.default_rng(SEED)
    scales = np.geomspace(0.11, 64.0, 64)
    table_of = rng.integers(0, scales.size, n)
    values = np.rint(rng.normal(0.0, scales[table_of])).astype(np.int64)
    half_widths = np.ceil(6.0 * scales).astype(np.int64)  # rarer values take the escape path
    pmfs = [gaussian_pmf(np.arange(-w, w + 1), s) for w, s in zip(half_widths, scales)]
    return values, table_of, FrequencyTables.from_pmfs(pmfs, -half_widths, PRECISION)


def bernoulli_sources(n: int):
    values = (np.random.default_rng(SEED).random(n) < BERNOULLI_P).astype(np.int64)
    for wrong in WRONG_P:
        tables = FrequencyTables.from_pmfs([[1 - wrong, wrong]], [0], escape_probability=2.0**-16)
        yield f"bernoulli n={n} table P(1)={wrong}", values, np.zeros(n, dtype=np.int64), tables


def neural_sources():
    """Kodak latents at quality 4 with the shipped model's per-channel tables, if available."""
    from nicbook import data

    if not data.kodak_available():
        return
    import torch

    from nicbook import zoo
    from nicbook.codec import latents, pad_to_stride
    from nicbook.nn.tensors import to_tensor

    model = zoo.load("factorized", quality=4)
    entropy_model = model.entropy_model
    entropy_model.ensure_tables()
    for index, image in enumerate(data.kodak_images([1, 2, 3, 4]), start=1):
        with torch.no_grad():
            symbols = entropy_model.to_symbols(model.analysis(to_tensor(pad_to_stride(image)))[0])
        estimate = float(entropy_model.channel_bits(symbols).sum())  # the model's own -log2 P
        yield f"neural kodim{index:02d} q4", symbols.ravel(), latents.channel_indices(symbols.shape), entropy_model.tables, estimate


def measure(name, values, table_of, tables, model_estimate=None) -> dict:
    """Size, information, lanes and the round trip of one source (and, for the neural latents,
    the size against the model's float estimate)."""
    data = rans_encode(values, table_of, tables)
    assert np.array_equal(rans_decode(data, table_of, tables), values), f"{name}: round trip failed"
    information = float(tables.information_bits(values, table_of).sum())
    bits = 8 * len(data)
    against_model = {} if model_estimate is None else {"model_estimate_bits": round(model_estimate, 1), "over_model_estimate": bits / model_estimate}
    return {
        **against_model,
        "source": name,
        "symbols": int(values.size),
        "lanes": decode_uvarint(data)[0],
        "information_bits": round(information, 1),
        "stream_bits": bits,
        "overhead_bits": round(bits - information, 1),
        "deviation": bits / information - 1,
    }


def constriction_coder(values, table_of, tables):
    """Encode and decode functions of constriction's ANS coder on the same integer tables, or None."""
    try:
        import constriction
    except ImportError:
        return None
    categorical = constriction.stream.model.Categorical
    scale = float(1 << tables.precision)
    # f / 2**16 is exact in float64; constriction quantizes it to its own 24-bit precision.
    models = [categorical(tables.table(t) / scale, perfect=False) for t in range(tables.num_tables)]
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
        decoded = np.empty_like(symbols)
        for t in range(tables.num_tables):
            decoded[order[bounds[t] : bounds[t + 1]]] = coder.decode(models[t], int(bounds[t + 1] - bounds[t]))
        return decoded

    compressed = encode()
    assert np.array_equal(decode(compressed), symbols), "constriction round trip failed"
    return encode, lambda: decode(compressed), 32 * int(compressed.size)


def speeds(name, values, table_of, tables, repeats: int) -> dict:
    """Encode and decode speeds of nicbook and constriction, timed alternately."""
    data = rans_encode(values, table_of, tables)
    functions = {
        "nicbook_encode": lambda: rans_encode(values, table_of, tables),
        "nicbook_decode": lambda: rans_decode(data, table_of, tables),
    }
    peer = constriction_coder(values, table_of, tables)
    if peer is not None:
        functions.update(constriction_encode=peer[0], constriction_decode=peer[1])
    seconds = alternate(functions, repeats)
    result = {"source": name, **{f"{key}_msym_s": values.size / s / 1e6 for key, s in seconds.items()}}
    if peer is not None:
        result["constriction_bits"] = peer[2]
        for step in ("encode", "decode"):
            result[f"{step}_speed_ratio"] = result[f"nicbook_{step}_msym_s"] / result[f"constriction_{step}_msym_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each side (median)")
    args = parser.parse_args()

    laplace, hyperprior = laplace_source(1_000_000), hyperprior_source(1_000_000)
    sources = [*bernoulli_sources(100_000), *bernoulli_sources(1_000_000)]
    sources += [("laplace", *laplace), ("hyperprior", *hyperprior), *neural_sources()]
    costs = [measure(*source) for source in sources]
    print(f"{'source':36s} {'symbols':>9s} {'lanes':>5s} {'information':>12s} {'overhead':>9s} {'deviation':>10s}")
    for row in costs:
        print(
            f"{row['source']:36s} {row['symbols']:9d} {row['lanes']:5d} {row['information_bits']:12.0f} "
            f"{row['overhead_bits']:9.0f} {row['deviation']:+10.4%}"
        )
    worst = max(costs, key=lambda row: abs(row["deviation"]))
    print(f"worst deviation: {worst['deviation']:+.4%} ({worst['source']})")
    for row in costs:
        if "over_model_estimate" in row:
            print(f"{row['source']}: stream {row['over_model_estimate']:.4f}× the model's estimate")

    timed = [speeds("laplace", *laplace, args.repeats), speeds("hyperprior", *hyperprior, args.repeats)]
    for row in timed:
        line = f"{row['source']}: nicbook encode {row['nicbook_encode_msym_s']:.1f}, decode {row['nicbook_decode_msym_s']:.1f} M symbols/s"
        if "constriction_encode_msym_s" in row:
            line += (
                f"; constriction encode {row['constriction_encode_msym_s']:.1f}, decode {row['constriction_decode_msym_s']:.1f}"
                f"; ratio encode {row['encode_speed_ratio']:.2f}, decode {row['decode_speed_ratio']:.2f}"
            )
        else:
            line += "; constriction is not installed (pip install constriction)"
        print(line)
    if args.json:
        print(json.dumps({"costs": costs, "worst_deviation": worst["deviation"], "speeds": timed, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
