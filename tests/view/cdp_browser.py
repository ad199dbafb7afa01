"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
JSON messages ended by NUL on file descriptors 3 (to the browser) and 4 (from it). Standard
library only: no selenium, no websocket package, no chromedriver.

    with Browser() as browser:
        page = browser.open(Path("trees.html"))       # waits for the load event
        page.eval("document.title")
        page.key("ArrowDown")
        page.screenshot(Path("shot.png"))
        assert page.errors == []                       # console errors, uncaught exceptions
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
KEYS = {  # key -> (code, windowsVirtualKeyCode)
    "ArrowDown": ("ArrowDown", 40), "ArrowUp": ("ArrowUp", 38), "ArrowLeft": ("ArrowLeft", 37),
    "ArrowRight": ("ArrowRight", 39), "Enter": ("Enter", 13), "Escape": ("Escape", 27),
    "Home": ("Home", 36), "End": ("End", 35), "/": ("Slash", 191), "*": ("Digit8", 56),
}  # fmt: skip


def find_chromium() -> str | None:
    """The browser binary: $SVPO_CHROMIUM, else the first of NAMES on PATH."""
    given = os.environ.get("SVPO_CHROMIUM")
    if given:
        return shutil.which(given) or (given if os.access(given, os.X_OK) else None)
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _high(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, binary: str | None = None, width: int = 1400, height: int = 900) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise BrowserError(f"no Chromium found (tried $SVPO_CHROMIUM, {', '.join(NAMES)})")
        self.width, self.height = width, height
        self._ids = itertools.count(1)
        self._replies: dict[int, dict[str, Any]] = {}
        # events per tab (DevTools session id): a page sees its own console errors only
        self._events: dict[str | None, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Condition()

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="svpo-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser's ends go to fds >= 10 first, so moving them to 3 and 4 clobbers nothing
        to_browser_r = _high(to_browser_r)
        from_browser_w = _high(from_browser_w)
        args = [
            self.binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
            "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--mute-audio",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--hide-scrollbars", f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}", "about:blank",
        ]  # fmt: skip
        # the pipe ends must be fds 3 and 4 in the browser: let a shell move them there
        shell = (
            f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        )
        self._proc = subprocess.Popen(
            ["bash", "-c", shell, "bash", *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except BrowserError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._to_browser)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as fh:
            while chunk := fh.read(1 << 16):
                buf += chunk
                *messages, buf = buf.split(b"\0")
                for raw in messages:
                    msg = json.loads(raw)
                    if "id" in msg:
                        with self._lock:
                            self._replies[msg["id"]] = msg
                            self._lock.notify_all()
                    else:
                        self.events(msg.get("sessionId")).put(msg)
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def events(self, session: str | None) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self._events.setdefault(session, queue.Queue())

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=30.0
    ) -> dict[str, Any]:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        except OSError as err:
            raise BrowserError(f"{method}: browser gone ({err})") from None
        deadline = time.monotonic() + timeout
        with self._lock:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or getattr(self, "_closed", False):
                    raise BrowserError(f"{method}: no reply in {timeout} s")
                self._lock.wait(left)
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, path: Path | str, fragment: str = "") -> Page:
        """A new tab on ``path`` (a file; ``fragment`` after #), after its load event."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        metrics = {"width": self.width, "height": self.height, "deviceScaleFactor": 1}
        self.send("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False}, session)
        url = Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")
        self.send("Page.navigate", {"url": url}, session)
        page.wait_for("Page.loadEventFired")
        return page


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session
        self.errors: list[str] = []  # console errors and uncaught exceptions, as text
        self.requests: list[str] = []  # URLs the page asked for (Network is not enabled)

    def _note(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(
                str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.errors.append(params["entry"].get("text", ""))

    def drain(self) -> None:
        while True:
            try:
                self._note(self.browser.events(self.session).get_nowait())
            except queue.Empty:
                return

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                left = max(0.01, deadline - time.monotonic())
                msg = self.browser.events(self.session).get(timeout=left)
            except queue.Empty:
                break
            self._note(msg)
            if msg.get("method") == method:
                return msg.get("params", {})
        raise BrowserError(f"no {method} in {timeout} s")

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression (JSON-able), after the page's pending events."""
        reply = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session,
        )
        self.drain()
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def key(self, key: str) -> None:
        """A real key press (keyDown with its text, then keyUp) to the focused element."""
        code, vk = KEYS[key] if key in KEYS else (f"Key{key.upper()}", ord(key.upper()))
        text = key if len(key) == 1 else ("\r" if key == "Enter" else "")
        base = {"key": key, "code": code, "windowsVirtualKeyCode": vk}
        down = {"type": "keyDown", **base, **({"text": text} if text else {})}
        self.browser.send("Input.dispatchKeyEvent", down, self.session)
        self.browser.send("Input.dispatchKeyEvent", {"type": "keyUp", **base}, self.session)
        self.drain()

    def screenshot(self, out: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.eval("[document.documentElement.scrollWidth, document.body.scrollHeight]")
            clip = {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 4000), "scale": 1}
            params["clip"] = clip
        data = self.browser.send("Page.captureScreenshot", params, self.session)["data"]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(data))
        return out
