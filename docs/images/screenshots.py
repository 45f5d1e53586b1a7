"""Regenerate the docs' MLflow screenshots from a finished job, in a headless Chromium.

    hyperseq run char_lm_quick --trials 12 --epochs 3 --final-top 1      # the README's quick start
    python docs/images/screenshots.py JOB [--tracking-uri URI] [--out docs/images]

Starts `hyperseq ui` on a free local port, opens the address it prints (the experiment's runs)
and drives Chromium over its DevTools protocol (Debian's ``chromium`` package; aiohttp, which
Ray installs, speaks the protocol): the runs page with the job expanded and the task metric,
reward and searched params as columns (``mlflow_runs.png``), and the job's two plot artifacts
as MLflow shows them (``job_plots.png``, ``choice_probabilities.png``). The UI is stopped at
the end. Exit 2 for a job that is not in the store.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZE = (1400, 900)
WAIT_S = 240.0            # a cold MLflow UI on a busy machine takes a while to answer
PARAMS = 6                # searched params shown as columns on the runs page
MENU = "[role=menu], [role=dialog], [data-radix-popper-content-wrapper]"    # the Columns menu


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_ui(uri: str, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    """`hyperseq ui` (its output to `log`) and the runs address it prints first."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hyperseq.cli", "ui", "--tracking-uri", uri,
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + WAIT_S
    address = None
    while time.monotonic() < deadline and proc.poll() is None:
        if address is None:
            found = re.search(r"http://\S+", log.read_text())
            address = found.group(0) if found else None
        else:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, address
            except OSError:
                pass
        time.sleep(0.5)
    _stop(proc)
    raise SystemExit(f"the MLflow UI did not answer on port {port} within {WAIT_S:g} s (see {log})")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM `hyperseq ui`, which stops its MLflow server's process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


class Browser:
    """One headless Chromium page driven over the DevTools protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.n = ws, 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=WAIT_S)
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    async def open(self, url: str, text: str) -> None:
        """Go to `url` and wait until the page shows `text` (the app renders after loading)."""
        await self.call("Page.navigate", url=url)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if text in (await self.js("document.body ? document.body.innerText : ''") or ""):
                await asyncio.sleep(2)                     # the rest of the page settles
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"{url} never showed {text!r}")

    async def click(self, what: str, within: str = "body") -> bool:
        """Click the first button or leaf element under `within` (a CSS selector) whose
        aria-label or text is `what`."""
        found = await self.js(f"""(() => {{
            const want = {json.dumps(what)};
            const els = Array.from(document.querySelectorAll({json.dumps(within)}))
                .flatMap(root => Array.from(root.querySelectorAll('button, label, span, div')));
            const el = els.find(e =>
                e.getAttribute('aria-label') === want || (e.childElementCount === 0 && e.innerText === want)
                || (e.tagName === 'BUTTON' && e.innerText.startsWith(want)));
            if (el) el.click();
            return !!el;
        }})()""")
        await asyncio.sleep(0.5)
        return bool(found)

    async def shot(self, path: Path) -> None:
        data = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


async def _screens(runs_url: str, exp_id: str, run_id: str, columns: list[str], out: Path) -> None:
    import aiohttp
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="hyperseq-shots-")
    cmd = [chromium, "--headless", "--disable-gpu", "--hide-scrollbars", f"--window-size={SIZE[0]},{SIZE[1]}",
           f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")                       # Chromium refuses root without it
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline:
                raise SystemExit("chromium did not open its DevTools port")
            await asyncio.sleep(0.2)
        port = port_file.read_text().split()[0]
        async with aiohttp.ClientSession() as http:
            pages = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            page = next(p for p in pages if p["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                b = Browser(ws)
                await b.call("Emulation.setDeviceMetricsOverride", width=SIZE[0], height=SIZE[1],
                             deviceScaleFactor=1, mobile=False)
                await b.call("Page.enable")
                await b.open(runs_url, "matching runs")
                await b.click("Close")                     # the assistant panel
                await b.js("document.querySelector('button[data-component-id*=runnamecellrenderer]')?.click()")
                await asyncio.sleep(1)                     # the job's trial runs, expanded
                await b.click("Show more columns")
                for column in ["Dataset", "Source", "Models", *columns]:      # hide three, show ours
                    if not await b.click(column, MENU):
                        print(f"note: no column {column!r} in the Columns menu", file=sys.stderr)
                await b.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}))")
                await asyncio.sleep(1)
                await b.shot(out / "mlflow_runs.png")
                base = runs_url.split("#")[0]
                for artifact, name in (("best_metric.png", "job_plots.png"),
                                       ("choice_probabilities.png", "choice_probabilities.png")):
                    await b.open(f"{base}#/experiments/{exp_id}/runs/{run_id}/artifacts/plots/{artifact}", artifact)
                    await b.click("Close")
                    await b.click(artifact)                # the same page: select it in the tree
                    await asyncio.sleep(2)
                    await b.shot(out / name)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("job", help="a finished job with an rnn controller (it has both plots)")
    parser.add_argument("--tracking-uri", default=None, help="[default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db]")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    from hyperseq.cli.output import TABLE_COLUMNS
    from hyperseq.tracking.query import TRIAL_COLUMNS, JobNotFound, best_configs, job_run
    from hyperseq.tracking.store import default_tracking_uri
    uri = args.tracking_uri or default_tracking_uri()
    try:
        parent, table = job_run(args.job, uri), best_configs(args.job, top=None, tracking_uri=uri)
    except JobNotFound as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    searched = table[~table["default"].astype(bool)]
    varying = [c for c in table.columns if c not in TRIAL_COLUMNS and searched[c].astype(str).nunique() > 1]
    columns = [f"best_{table.attrs.get('metric', 'metric')}", "reward", *varying[:min(PARAMS, TABLE_COLUMNS)]]
    ui, runs_url = _start_ui(uri, _free_port(), Path(tempfile.mkdtemp(prefix="hyperseq-ui-")) / "ui.log")
    try:
        asyncio.run(_screens(runs_url, parent.info.experiment_id, parent.info.run_id, columns, args.out))
    finally:
        _stop(ui)
    return 0


if __name__ == "__main__":
    sys.exit(main())
