#!/usr/bin/env python3
"""Open an explbench HTML report in headless Chromium and check it, using only the stdlib.

Checks: no console errors or uncaught exceptions, no network request other than data: URIs
(and the report file itself), every <audio> element loads and has a finite duration > 0, every
<img> decodes. Writes a full-page screenshot (1280 px wide).

    python scripts/browser_check.py runs/RUN/report.html --screenshot report.png

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library is needed.
If Chromium is missing and the script runs as root outside CI, it tries
``apt-get update && apt-get install -y chromium``. Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "chromium", "chromium-browser",
                       "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1280,4000"]

AUDIO_JS = """
(async () => {
  const audios = [...document.querySelectorAll('audio')];
  const ready = a => a.readyState >= 1 || a.error ? Promise.resolve() : new Promise(r => {
    a.addEventListener('loadedmetadata', r, {once: true});
    a.addEventListener('error', r, {once: true});
  });
  await Promise.race([Promise.all(audios.map(ready)), new Promise(r => setTimeout(r, 15000))]);
  const imgs = [...document.images];
  await Promise.race([Promise.all(imgs.map(i => i.decode().catch(() => null))),
                      new Promise(r => setTimeout(r, 15000))]);
  return JSON.stringify({
    audio: audios.map(a => ({duration: a.duration, error: a.error ? a.error.code : null,
                             src: a.currentSrc.slice(0, 30)})),
    images: imgs.map(i => ({ok: i.complete && i.naturalWidth > 0, src: i.currentSrc.slice(0, 30)})),
    height: document.documentElement.scrollHeight,
  });
})()
"""


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    for c in CHROMIUM_CANDIDATES:
        p = shutil.which(c) if not c.startswith("/") else (c if os.access(c, os.X_OK) else None)
        if p:
            return p
    return None


def try_install() -> str | None:
    """apt-get install chromium when running as root outside CI; the path or None."""
    if os.geteuid() != 0 or os.environ.get("CI") or os.environ.get("PYTEST_CURRENT_TEST"):
        return None
    print("chromium not found; trying apt-get update && apt-get install -y chromium", file=sys.stderr)
    subprocess.run(["apt-get", "update"], check=False)
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=False)
    return find_chromium()


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, chromium: str, user_data_dir: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # move the child's ends above 9 so that dup2 to 3 and 4 cannot clobber either
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
        os.close(to_child_r)
        os.close(from_child_w)

        def child_fds() -> None:
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=child_fds)
        os.close(hi_r)
        os.close(hi_w)
        self._next = 0
        self._replies: dict[int, dict] = {}
        self.events: queue.Queue = queue.Queue()
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr.append(line.decode(errors="replace").rstrip())

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._replies[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self.events.put(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        """Send a command and wait for its reply; raises RuntimeError on a protocol error."""
        self._next += 1
        mid = self._next
        msg: dict = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no reply to {method} (chromium exited or timed out); "
                                       f"stderr: {' | '.join(self.stderr[-5:])}")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error']}")
        return reply.get("result", {})

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except RuntimeError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass


def _drain(dt: DevTools, until: str | None, timeout: float, seen: list[dict]) -> bool:
    """Collect events into ``seen``; True once an event named ``until`` arrives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ev = dt.events.get(timeout=0.2)
        except queue.Empty:
            if until is None:
                return True
            continue
        seen.append(ev)
        if until is not None and ev.get("method") == until:
            return True
    return until is None


def check(report: str | Path, screenshot: str | Path | None = None, chromium: str | None = None,
          timeout: float = 60.0) -> dict:
    """Open ``report`` in headless Chromium and check it.

    Returns
    -------
    dict with keys ``ok`` (bool), ``problems`` (list of str), ``requests`` (URLs other than
    data: and the report), ``console_errors``, ``audio`` (per element: duration, error),
    ``images`` and ``screenshot`` (path or None).
    """
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found; install it with: apt-get install -y chromium")
    report = Path(report).resolve()
    url = report.as_uri()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="explbench-chromium-") as profile:
        dt = DevTools(chromium, profile)
        try:
            target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                dt.send(f"{domain}.enable", session=session)
            dt.send("Emulation.setDeviceMetricsOverride",
                    {"width": 1280, "height": 4000, "deviceScaleFactor": 1, "mobile": False}, session)
            seen: list[dict] = []
            dt.send("Page.navigate", {"url": url}, session)
            if not _drain(dt, "Page.loadEventFired", timeout, seen):
                problems.append(f"the page did not finish loading within {timeout:.0f} s")
            res = dt.send("Runtime.evaluate", {"expression": AUDIO_JS, "awaitPromise": True,
                                               "returnByValue": True}, session, timeout=timeout)
            state = json.loads(res.get("result", {}).get("value") or "{}")
            _drain(dt, None, 1.0, seen)
            shot = None
            if screenshot is not None:
                height = min(int(state.get("height") or 4000), 16000)
                dt.send("Emulation.setDeviceMetricsOverride",
                        {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
                data = dt.send("Page.captureScreenshot", {"format": "png"}, session, timeout=timeout)["data"]
                import base64

                Path(screenshot).write_bytes(base64.b64decode(data))
                shot = str(screenshot)
        finally:
            dt.close()
    requests, console = [], []
    for ev in seen:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Network.requestWillBeSent":
            u = p.get("request", {}).get("url", "")
            if not (u.startswith("data:") or u == url or u == "about:blank"):
                requests.append(u)
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif m == "Runtime.exceptionThrown":
            console.append(str(p.get("exceptionDetails", {}).get("text")))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            console.append(str(p["entry"].get("text")) + " " + str(p["entry"].get("url", "")))
    audio = state.get("audio", [])
    images = state.get("images", [])
    if requests:
        problems.append(f"{len(requests)} network request(s) besides data: URIs: {requests[:5]}")
    if console:
        problems.append(f"console errors: {console[:5]}")
    bad_audio = [a for a in audio if a.get("error") is not None or not (a.get("duration") or 0) > 0]
    if bad_audio:
        problems.append(f"{len(bad_audio)} of {len(audio)} audio elements have no duration: {bad_audio[:3]}")
    bad_img = [i for i in images if not i.get("ok")]
    if bad_img:
        problems.append(f"{len(bad_img)} of {len(images)} images did not decode")
    return {"ok": not problems, "problems": problems, "requests": requests, "console_errors": console,
            "audio": audio, "images": images, "screenshot": shot}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", help="the HTML file to check")
    ap.add_argument("--screenshot", default=None, help="write a full-page PNG here")
    ap.add_argument("--chromium", default=None, help="path of the chromium executable")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    chromium = args.chromium or find_chromium() or try_install()
    if chromium is None:
        print("browser_check: chromium not found; install it with 'apt-get install -y chromium'",
              file=sys.stderr)
        return 2
    result = check(args.report, args.screenshot, chromium, args.timeout)
    durations = [round(a["duration"], 2) for a in result["audio"] if a.get("duration")]
    print(json.dumps({"ok": result["ok"], "problems": result["problems"],
                      "audio_elements": len(result["audio"]), "audio_durations": durations[:8],
                      "images": len(result["images"]), "screenshot": result["screenshot"]}, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
