"""Shadow snapshot read time: a 2,000-product Tryton snapshot, target <= 5 s against a local Tryton.

    python benchmarks/bench_shadow.py [--products 2000] [--repeat 3] [--json PATH]

Provisions a Tryton 8.2 database on SQLite in a temporary folder (module activation, then the
test seed scaled to ``--products``: 2 DCs, 2 stores, 3 suppliers, order points, open purchases,
sales on 2 days), then times ``TrytonAdapter.read_state`` + ``build_snapshot`` in-process
(proteus ``set_trytond``) and over XML-RPC to a ``trytond`` server on 127.0.0.1 (median of
``--repeat``). Baseline in the same run: one unchunked ``read`` of ``quantity`` for all products
per warehouse, the call the chunked reader replaces.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 5.0


def main() -> None:
    import promotwin.testing.tryton as tf

    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    reason = tf.tryton_available()
    if reason:
        sys.exit(f"skipped: {reason}")

    from proteus import config

    from promotwin.shadow import Credentials, IdMapping, build_snapshot
    from promotwin.shadow.tryton import TrytonAdapter

    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        folder = Path(tmp)
        port = tf.free_port()
        conf = tf.write_config(folder, port)
        activation = tf.activate(folder, "bench", conf)
        t0 = time.perf_counter()
        cfg = config.set_trytond("bench", config_file=str(conf))
        tf.seed(cfg, tf.SeedSpec(n_products=args.products, sale_days=(1, 8)))
        seeding = time.perf_counter() - t0

        def timed(adapter: Any) -> tuple[float, int]:
            t = time.perf_counter()
            built = build_snapshot(adapter.read_state(), IdMapping())
            return time.perf_counter() - t, built.snapshot.n_skus

        results: dict[str, Any] = {
            "products": args.products,
            "activation_s": activation,
            "seed_s": seeding,
            "target_s": TARGET_S,
        }
        in_process = TrytonAdapter(f"trytond://bench?config={conf}")
        runs = [timed(in_process) for _ in range(args.repeat)]
        results["in_process_s"] = statistics.median(r[0] for r in runs)
        results["skus"] = runs[0][1]

        # baseline: the unchunked stock read the adapter avoids (in-process)
        prod = cfg.get_proxy("product.product")
        ids = prod.search([("type", "=", "goods")], 0, None, None, cfg.context)
        whs = cfg.get_proxy("stock.location").search(
            [("type", "=", "warehouse")], 0, None, None, cfg.context
        )
        t = time.perf_counter()
        for w in whs:
            prod.read(ids, ["quantity"], {**cfg.context, "locations": [w]})
        results["baseline_unchunked_stock_read_s"] = time.perf_counter() - t

        server = tf.Server(conf, port, ("bench",))
        server.start()
        try:
            rpc = TrytonAdapter(
                f"http://127.0.0.1:{port}/bench", Credentials("admin", tf.ADMIN_PASSWORD)
            )
            runs = [timed(rpc) for _ in range(args.repeat)]
            rpc.close()
            results["xmlrpc_s"] = statistics.median(r[0] for r in runs)
        finally:
            server.stop()
    results["meets_target"] = max(results["in_process_s"], results["xmlrpc_s"]) <= TARGET_S
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
