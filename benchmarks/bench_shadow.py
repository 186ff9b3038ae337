"""Shadow snapshot read time: a 2,000-product Tryton snapshot, target <= 3 s over XML-RPC and
JSON-RPC against a local Tryton.

    python benchmarks/bench_shadow.py [--products 2000] [--repeat 3] [--folder DIR] [--json PATH]

Provisions a Tryton 8.2 database on SQLite (module activation, then the test seed scaled to
``--products``: 2 DCs, 2 stores, 3 suppliers, order points, open purchases, sales on 2 days) in
``--folder`` (kept and reused when given) or a temporary folder, then times
``TrytonAdapter.read_state`` + ``build_snapshot`` in-process (proteus ``set_trytond``) and over
XML-RPC and JSON-RPC to a ``trytond`` server on 127.0.0.1. Baseline in the same run: the same
reads one at a time on one connection (``workers=1``), alternated with the parallel reads
(``workers=4``) so both see the same machine load. Reported per mode: median wall seconds, the
client's CPU seconds and the server process's CPU seconds (``/proc``), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 3.0
WORKERS = 4


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def provision(folder: Path, products: int) -> tuple[Path, int, dict[str, float]]:
    import promotwin.testing.tryton as tf

    conf = next(folder.glob("trytond-*.conf"), None)
    if conf is not None and (folder / "db" / "bench.sqlite").is_file():
        return conf, int(conf.stem.split("-")[1]), {}
    port = tf.free_port()
    conf = tf.write_config(folder, port)
    activation = tf.activate(folder, "bench", conf)
    from proteus import config

    t0 = time.perf_counter()
    cfg = config.set_trytond("bench", config_file=str(conf))
    tf.seed(cfg, tf.SeedSpec(n_products=products, sale_days=(1, 8)))
    return conf, port, {"activation_s": activation, "seed_s": time.perf_counter() - t0}


def main() -> None:
    import promotwin.testing.tryton as tf

    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", type=Path, help="provision here once and reuse it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    reason = tf.tryton_available()
    if reason:
        sys.exit(f"skipped: {reason}")

    from promotwin.shadow import Credentials, IdMapping, build_snapshot
    from promotwin.shadow.tryton import TrytonAdapter

    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        folder = args.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        conf, port, setup = provision(folder, args.products)
        results: dict[str, Any] = {**setup, "target_s": TARGET_S}
        creds = Credentials("admin", tf.ADMIN_PASSWORD)

        def timed(adapter: Any, pid: int | None) -> tuple[float, float, float, int]:
            """(wall s, client CPU s, server CPU s, SKUs) of one snapshot read and build."""
            cpu0, srv0 = time.process_time(), server_cpu(pid) if pid else 0.0
            t = time.perf_counter()
            built = build_snapshot(adapter.read_state(), IdMapping())
            wall = time.perf_counter() - t
            srv = server_cpu(pid) - srv0 if pid else 0.0
            return wall, time.process_time() - cpu0, srv, built.snapshot.n_skus

        def summary(runs: list[tuple[float, float, float, int]]) -> dict[str, float]:
            return {
                "wall_s": round(statistics.median(r[0] for r in runs), 3),
                "client_cpu_s": round(statistics.median(r[1] for r in runs), 3),
                "server_cpu_s": round(statistics.median(r[2] for r in runs), 3),
            }

        in_process = TrytonAdapter(f"trytond://bench?config={conf}")
        runs = [timed(in_process, None) for _ in range(args.repeat)]
        results["in_process"] = summary(runs)
        results["skus"] = runs[0][3]  # the products read (a kept --folder keeps its size)

        server = tf.Server(conf, port, ("bench",))
        server.start()
        assert server.process is not None
        pid = server.process.pid
        try:
            for scheme in ("http", "jsonrpc+http"):
                url = f"{scheme}://127.0.0.1:{port}/bench"
                serial: list[tuple[float, float, float, int]] = []
                parallel: list[tuple[float, float, float, int]] = []
                for _ in range(args.repeat):  # alternate baseline and new: same load for both
                    for workers, out in ((1, serial), (WORKERS, parallel)):
                        a = TrytonAdapter(url, creds, timeout=120, workers=workers)
                        out.append(timed(a, pid))
                        a.close()
                name = "xmlrpc" if scheme == "http" else "jsonrpc"
                results[f"{name}_serial"] = summary(serial)
                results[f"{name}_parallel"] = summary(parallel)
                results[f"{name}_speedup"] = round(
                    results[f"{name}_serial"]["wall_s"] / results[f"{name}_parallel"]["wall_s"], 2
                )
        finally:
            server.stop()
    results["load_average"] = os.getloadavg()
    results["meets_target"] = all(
        results[f"{n}_parallel"]["wall_s"] <= TARGET_S for n in ("xmlrpc", "jsonrpc")
    )
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
