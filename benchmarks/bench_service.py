"""POS ingest of ``twin serve`` while re-plans run: target >= 2,000 lines/s in batches of 500
with p99 <= 200 ms, and a promotion event on appliance_promo answered in <= 3 s.

    python benchmarks/bench_service.py [--seconds 10] [--rate 2000] [--batch 500] [--json PATH]
        [--tree DIR]

A real ``twin serve`` on 127.0.0.1 (SQLite store, WAL, synchronous=FULL). A bounded open-loop
httpx generator sends a batch every ``batch / rate`` seconds (at most 8 in flight) for
``--seconds``, twice: first with the planning process idle (the baseline), then while a second
client posts promotion revisions back to back, so a re-plan runs throughout. Reported per
phase: lines/s accepted, p50/p95/p99 batch latency, the server's CPU (the API process and the
planning process, from /proc) and the ratios of the re-plan phase to the baseline; and the
promotion latencies. ``--tree DIR`` serves from another source tree (e.g. ``git archive`` of an
older commit): run it alternately with this one to compare under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TARGET_LINES_S = 2000.0
TARGET_P99_S = 0.200
TARGET_PROMOTION_S = 3.0
IN_FLIGHT = 8
STORES = ["N01", "N02", "N03", "C01", "C02", "S01", "S02"]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of ``pid`` (the API process) and of its children (the
    planning process), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int | str) -> list[str]:
        try:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return []

    def cpu(fields: list[str]) -> float:
        return (int(fields[11]) + int(fields[12])) / tick if fields else 0.0

    children = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat(entry.name)
            if fields and int(fields[1]) == pid:
                children += cpu(fields)
    return cpu(stat(pid)), children


def batches(n_lines: int, tag: str) -> list[bytes]:
    """Bodies of POS batches, encoded up front (the generator's own CPU stays small)."""
    out = []
    for b in range(10_000):
        lines = [
            {
                "event_id": f"{tag}-{b}-{i}",
                "date": f"2026-05-{5 + (b + i) % 20:02d}",
                "location": STORES[i % len(STORES)],
                "sku": f"FAN-{i % 12 + 1:02d}",
                "channel": "walk_in",
                "units": i % 4,
            }
            for i in range(n_lines)
        ]
        out.append(json.dumps({"lines": lines}).encode())
        if len(out) * n_lines >= 400_000:
            break
    return out


def ingest(
    url: str, token: str, bodies: list[bytes], rate: float, seconds: float
) -> dict[str, Any]:
    """Open loop: one batch every ``lines / rate`` s, at most ``IN_FLIGHT`` at once."""
    import httpx

    n_lines = len(json.loads(bodies[0])["lines"])
    interval = n_lines / rate
    latencies: list[float] = []
    accepted = [0]
    errors = [0]
    lock = threading.Lock()
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=IN_FLIGHT))

    def send(body: bytes) -> None:
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Content-Type": "application/json",
        }
        t = time.perf_counter()
        r = client.post(f"{url}/v1/events/sales", content=body, headers=headers)
        dt = time.perf_counter() - t
        with lock:
            latencies.append(dt)
            if r.status_code == 200:
                accepted[0] += r.json()["accepted"]
            else:
                errors[0] += 1

    sent = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        while time.perf_counter() - t0 < seconds and sent < len(bodies):
            pool.submit(send, bodies[sent])
            sent += 1
            time.sleep(max(0.0, t0 + sent * interval - time.perf_counter()))
    wall = time.perf_counter() - t0
    client.close()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "batches": sent,
        "errors": errors[0],
        "lines_per_s": accepted[0] / wall,
        "p50_ms": 1000 * q[49],
        "p95_ms": 1000 * q[94],
        "p99_ms": 1000 * q[98],
        "max_ms": 1000 * max(latencies),
        "wall_s": wall,
    }


def post_promotion(url: str, token: str, version: int) -> float:
    """One revision of the appliance promotion; seconds until readiness and actions came back."""
    import httpx

    from promotwin.scenarios import load_scenario

    p = load_scenario("appliance_promo").promotions[0].model_dump(mode="json")
    body = {**p, "depth": 0.15 + 0.01 * (version % 10), "version": version}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    t = time.perf_counter()
    r = httpx.post(f"{url}/v1/promotions", json=body, headers=headers, timeout=120)
    if r.status_code != 201:
        raise RuntimeError(f"promotion refused: {r.text[:300]}")
    return time.perf_counter() - t


def replans(url: str, token: str, first: int, stop: threading.Event, out: list[float]) -> None:
    """Promotion revisions back to back: the planning process re-plans all along."""
    version = first
    while not stop.is_set():
        out.append(post_promotion(url, token, version))
        version += 1


def phase(server: Any, token: str, bodies: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    (api0, plan0), t0 = cpu_seconds(server.process.pid), time.perf_counter()
    result = ingest(server.url, token, bodies, args.rate, args.seconds)
    api1, plan1 = cpu_seconds(server.process.pid)
    cpu = api1 - api0 + plan1 - plan0
    result["server_cpu_s"] = cpu
    result["api_process_cpu_s"] = api1 - api0
    result["planning_process_cpu_s"] = plan1 - plan0
    result["server_cores"] = cpu / (time.perf_counter() - t0)
    return result


def other_tree(tree: Path, tmp: Path) -> dict[str, str]:
    """The environment that makes the server import ``tree``'s promotwin: on the path, and
    the editable install's finder (which would win over the path) taken out at start-up."""
    if (Path.cwd() / "promotwin").exists():  # `python -m` puts the working directory first
        raise SystemExit("--tree: run the benchmark from outside a source tree (cd /tmp)")
    (tmp / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path\n"
        "                    if not getattr(f, '__module__', '').startswith('__editable__')]\n"
    )
    return {"PYTHONPATH": f"{tmp}{os.pathsep}{tree.resolve()}"}


def main() -> None:
    from promotwin.service.db import ServiceStore
    from promotwin.testing.service import start_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=TARGET_LINES_S, help="POS lines/s sent")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tree", type=Path, help="serve from this source tree's promotwin")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        store = Path(tmp) / "service.sqlite"
        s = ServiceStore(store)
        token = s.create_key("bench", "admin", {}, "bench")[1]
        s.close()
        env = other_tree(args.tree, Path(tmp)) if args.tree else None
        server = start_server(
            store, "appliance_promo", "--replan-lines", "0", "--rate-limit", "1000", env=env
        )
        try:
            idle = [post_promotion(server.url, token, v) for v in (1, 2, 3)]  # nothing else
            baseline = phase(server, token, batches(args.batch, "base"), args)
            promo: list[float] = []
            stop = threading.Event()
            worker = threading.Thread(target=replans, args=(server.url, token, 4, stop, promo))
            worker.start()
            time.sleep(1.0)  # the first re-plan is under way
            loaded = phase(server, token, batches(args.batch, "load"), args)
            stop.set()
            worker.join()
        finally:
            server.stop()
    report = {
        "tree": str(args.tree or "this one"),
        "batch_lines": args.batch,
        "rate_sent_lines_s": args.rate,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "baseline": baseline,
        "during_replans": loaded,
        "promotion_alone_s": idle,
        "promotions_during_ingest": {
            "n": len(promo),
            "p50_s": statistics.median(promo) if promo else None,
            "max_s": max(promo) if promo else None,
        },
        "ratios": {
            "lines_per_s": loaded["lines_per_s"] / baseline["lines_per_s"],
            "p99": loaded["p99_ms"] / baseline["p99_ms"],
            "server_cpu": loaded["server_cpu_s"] / baseline["server_cpu_s"],
            "api_process_cpu": loaded["api_process_cpu_s"] / baseline["api_process_cpu_s"],
        },
        "targets": {
            "lines_per_s": TARGET_LINES_S,
            "p99_ms": 1000 * TARGET_P99_S,
            "promotion_s": TARGET_PROMOTION_S,
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
