"""Load test of the demo, run by hand before a release: concurrent clients calling /predict.

Measures the product as visitors meet it (docs/reliability.md quotes its last run).

Starts ``app.py`` in a subprocess on 127.0.0.1 and a free port, runs CLIENTS threads that each
call ``/predict`` REQUESTS times on the example photos, then stops the server and reports:

* requests sent, answered, failed (an exception, an ``error`` in the details, or a reply that
  breaks the API contract) and lost (no answer before the deadline);
* p50 / p95 / max latency of the answered requests, and the throughput;
* the server's resident memory (RSS) after start-up, after the first 100 answers and after
  the last one, and its growth between the first hundred and the end.

Usage (from the repo root)::

    python bench/load.py                         # 8 clients x 25 requests, shipped weights/
    python bench/load.py --clients 2 --requests 3 --weights /tmp/qw
    python bench/load.py --json runs/load.json   # also write the figures as JSON

The run is bounded: requests stop being sent after ``--max-seconds`` (default 900), each one
waits at most ``--request-timeout`` seconds (default 120), and the server is stopped at the
end whatever happened. Exit status: 0 when every request was answered without error, 1 when
not, 2 when the app did not start.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detector.bench import free_port, start_app, stop_app, tail  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = sorted(p for p in (REPO / "examples").iterdir() if p.suffix.lower() in (".jpg", ".png"))
#: Memory is sampled after this many answers (the "first hundred" of the goal).
FIRST = 100


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from psutil when installed, else from /proc."""
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS line in /proc/{pid}/status") from None
    return psutil.Process(pid).memory_info().rss


@dataclass
class Tally:
    """What happened to the requests, shared by the client threads."""

    pid: int
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_first: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, latency: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(latency)
            if error:
                self.errors.append(error)
            if len(self.latencies) == FIRST:
                self.rss_first = rss_bytes(self.pid)


def check_reply(reply: tuple) -> str | None:
    """Why a /predict reply breaks the API contract, or None when it keeps it."""
    label, overlay, details = reply
    if details.get("error"):
        return f"error in details: {details['error']}"
    bars = {c["label"]: c["confidence"] for c in label.get("confidences", [])}
    faces = {f"face {i}": face["fake_probability"] for i, face in enumerate(details["faces"], 1)}
    if bars.keys() != faces.keys() or not all(math.isclose(bars[k], faces[k], abs_tol=1e-9) for k in faces):
        return f"the bars {bars} are not the faces' fake probabilities {faces}"
    if not overlay or not Path(overlay).is_file():
        return f"overlay {overlay!r} is not a file"
    return None


def client_loop(url: str, index: int, requests: int, images: list[Path], tally: Tally,
                stop_at: float, request_timeout: float, downloads: str) -> None:
    """One client: ``requests`` calls of /predict, cycling through ``images``."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=downloads)
    for i in range(requests):
        if time.monotonic() > stop_at:
            return
        image = images[(index + i) % len(images)]
        with tally.lock:
            tally.sent += 1
        start = time.monotonic()
        job = client.submit(handle_file(str(image)), api_name="/predict")
        try:
            reply = job.result(timeout=request_timeout)
        except TimeoutError:  # counted as lost: sent, never answered
            continue
        except Exception as err:  # any failure the client reports counts as an error
            tally.answered(time.monotonic() - start, f"{type(err).__name__}: {err}")
            continue
        tally.answered(time.monotonic() - start, check_reply(reply))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def run(clients: int, requests: int, weights: str | None, images: list[Path], max_seconds: float,
        request_timeout: float, startup_timeout: float = 300.0) -> dict:
    """Starts the app, drives it, stops it, and returns the figures (see the module doc)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="load_app_", suffix=".log", delete=False)
    t0 = time.monotonic()
    proc = start_app(weights, port, log, startup_timeout)
    startup = time.monotonic() - t0
    url = f"http://127.0.0.1:{port}/"
    try:
        tally = Tally(proc.pid)
        rss_start = rss_bytes(proc.pid)
        stop_at = time.monotonic() + max_seconds
        with tempfile.TemporaryDirectory(prefix="load_downloads_") as downloads:
            threads = [
                threading.Thread(target=client_loop, daemon=True,
                                 args=(url, i, requests, images, tally, stop_at, request_timeout, downloads))
                for i in range(clients)
            ]
            t1 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                # A client can overrun the deadline by one request's timeout at most.
                t.join(max(0.0, stop_at - time.monotonic()) + request_timeout + 30)
            wall = time.monotonic() - t1
        alive = proc.poll() is None
        rss_end = rss_bytes(proc.pid) if alive else None
    finally:
        stop_app(proc)
    if not alive:
        print(f"app.py died (status {proc.returncode}); its output ends with:\n{tail(log)}", file=sys.stderr)
    log.close()
    os.unlink(log.name)

    planned = clients * requests
    answered = len(tally.latencies)
    lost = tally.sent - answered  # timed out, or still pending when the clients were given up
    base = tally.rss_first
    return {
        "clients": clients,
        "requests_per_client": requests,
        "planned": planned,
        "sent": tally.sent,
        "answered": answered,
        "errors": len(tally.errors),
        "lost": lost,
        "not_sent": planned - tally.sent,
        "error_samples": sorted(set(tally.errors))[:5],
        "server_alive_at_end": alive,
        "startup_s": round(startup, 1),
        "wall_s": round(wall, 1),
        "throughput_per_s": round(answered / wall, 2) if wall else None,
        "latency_p50_s": round(percentile(tally.latencies, 50), 3),
        "latency_p95_s": round(percentile(tally.latencies, 95), 3),
        "latency_max_s": round(max(tally.latencies, default=float("nan")), 3),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_after_first_100_mb": round(base / 2**20, 1) if base else None,
        "rss_end_mb": round(rss_end / 2**20, 1) if rss_end else None,
        "rss_growth_pct": round(100 * (rss_end - base) / base, 2) if base and rss_end else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=int, default=25, help="requests per client (default 25)")
    parser.add_argument("--weights", default=os.environ.get("DETECTOR_WEIGHTS"),
                        help="weights folder for app.py (default: $DETECTOR_WEIGHTS or weights/)")
    parser.add_argument("--images", nargs="+", type=Path, default=DEFAULT_IMAGES,
                        help="photos to send, in turn (default: examples/)")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop sending after this (default 900)")
    parser.add_argument("--request-timeout", type=float, default=120.0,
                        help="a request without an answer after this is lost (default 120)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error(f"--clients and --requests must be at least 1, not {args.clients} and {args.requests}")

    try:
        figures = run(args.clients, args.requests, args.weights, args.images, args.max_seconds, args.request_timeout)
    except RuntimeError as err:  # the app did not start: its own message says why
        print(f"error: {err}", file=sys.stderr)
        return 2
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if figures["rss_growth_pct"] is None:
        print(f"(memory growth needs at least {FIRST} answered requests)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ok = figures["errors"] == 0 and figures["lost"] == 0 and figures["not_sent"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
