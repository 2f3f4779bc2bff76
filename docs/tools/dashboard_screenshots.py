"""Screenshots of a run's TensorBoard dashboard, as a user sees it, for docs/dashboards.md.

    python docs/tools/dashboard_screenshots.py RUN_DIR --out docs/dashboard

starts TensorBoard on RUN_DIR, opens each dashboard tab in headless Chromium (Debian's `chromium`
package: apt-get install chromium) and writes OUT_<tab>.png. Chromium's virtual time budget lets
the page's scripts load the data before the picture is taken.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

TABS = ("timeseries", "scalars", "custom_scalars", "images", "histograms", "hparams", "text")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/data/runs", timeout=2) as r:
                if r.status == 200 and r.read() not in (b"", b"[]"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"error: TensorBoard did not serve {url} within {seconds:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logdir")
    p.add_argument("--out", default="docs/dashboard", help="file prefix: OUT_<tab>.png")
    p.add_argument("--tabs", default=",".join(TABS))
    p.add_argument("--size", default="1400,1000", help="window width,height in pixels")
    p.add_argument("--budget-ms", type=int, default=20000, help="Chromium's virtual time for the page to load")
    args = p.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("error: no Chromium found; install it (Debian: apt-get install chromium)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir, "--host",
                              "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url)
        for tab in args.tabs.split(","):
            out = Path(f"{args.out}_{tab}.png").resolve()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.unlink(missing_ok=True)
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--window-size={args.size}", f"--virtual-time-budget={args.budget_ms}",
                            f"--screenshot={out}", f"{url}/#{tab}"],
                           check=True, capture_output=True, timeout=120)
            if not out.is_file():
                raise SystemExit(f"error: Chromium wrote no screenshot for the {tab} tab ({out})")
            print(out)
    finally:
        board.terminate()
        board.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
