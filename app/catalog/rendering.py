"""Rendering prompt templates: untrusted Jinja, in a sandbox, in a bounded worker process.

Templates are content edited by site admins and by any workspace's managers
(a Free user can author one), so they are rendered with SandboxedEnvironment
(no access to Python internals) and StrictUndefined (a misspelt variable is an
error, not an empty string) — see prompt_sandbox.py — and in a small pool of
render worker processes, so a hostile template is bounded in CPU time, memory,
output size and nesting, and runs at a lower priority than page requests. The
parent kills a worker that does not answer within RENDER_WALL_SECONDS.

Rendering never holds the database write lock: before a render, the request's
transaction is ended when it has written nothing yet (SQLite takes its write
lock at the first statement of a POST, see app/db_setup.py).
"""
from __future__ import annotations

import atexit
import os
import queue
import select
import subprocess
import sys
import threading
import time
from typing import Any

from flask import current_app, has_app_context
from jinja2 import TemplateSyntaxError

from app.catalog import prompt_sandbox
from app.catalog.prompt_sandbox import MAX_RENDERED_CHARS, read_message, write_message
from app.db_setup import release_write_lock

__all__ = ["MAX_RENDERED_CHARS", "PromptError", "RenderBusy", "check_syntax", "render_prompt"]

_env = prompt_sandbox.env
STARTUP_SECONDS = 30  # a new worker's interpreter start, on a busy machine
DEFAULT_LIMITS = {"RENDER_CPU_SECONDS": 1.0, "RENDER_WALL_SECONDS": 5.0, "RENDER_MEMORY_MB": 128,
                  "RENDER_WORKERS": 2}


class PromptError(Exception):
    """A prompt template that cannot be rendered, with the line when known.

    `bound` names the limit a hostile template ran into ("time", "memory", "output",
    "recursion", "busy"), or is None for an ordinary mistake.
    """

    def __init__(self, message: str, lineno: int | None = None, bound: str | None = None):
        super().__init__(message if lineno is None else f"line {lineno}: {message}")
        self.message = message
        self.lineno = lineno
        self.bound = bound


class RenderBusy(PromptError):
    """Every render worker stayed busy for the whole wait: try again shortly."""


def check_syntax(source: str) -> None:
    """Raise PromptError if the template does not parse (parsing runs nothing the template says)."""
    try:
        _env.parse(source)
    except TemplateSyntaxError as exc:
        raise PromptError(exc.message or "syntax error", exc.lineno) from exc
    except RecursionError as exc:
        raise PromptError("the template nests too deeply to be read (Python's recursion limit)",
                          bound="recursion") from exc


def render_prompt(source: str, context: dict[str, Any], available: set[str] | frozenset[str] | None = None) -> str:
    """Render one prompt template with the given variables, safely and within the limits.

    With `available`, a variable the template uses anywhere (not only in the branches
    these inputs reach) but that is not available is refused, with its line: a typo
    inside an `{% if %}` is caught at save time. Only parsing happens in this process;
    compiling and rendering happen in a render worker (see prompt_sandbox.render).
    """
    limits = _limits()
    if has_app_context() and not release_write_lock():
        current_app.logger.warning("rendering a template inside a transaction that already wrote: "
                                   "it keeps its locks for up to RENDER_WALL_SECONDS")
    request = {"source": source, "context": context, "max_chars": MAX_RENDERED_CHARS,
               "cpu_seconds": limits["RENDER_CPU_SECONDS"], "memory_mb": limits["RENDER_MEMORY_MB"],
               "available": sorted(available) if available is not None else None}
    answer = _pool(limits["RENDER_WORKERS"]).render(request, limits["RENDER_WALL_SECONDS"])
    if "error" in answer:
        raise PromptError(answer["error"], answer.get("line"), answer.get("bound"))
    return answer["text"].strip()


def _limits() -> dict[str, Any]:
    if not has_app_context():
        return DEFAULT_LIMITS
    return {key: current_app.config.get(key, default) for key, default in DEFAULT_LIMITS.items()}


# --- The pool of render workers -------------------------------------------------------------------

class _WorkerLost(Exception):
    """The worker did not answer in time, or died."""


class _Worker:
    """One `python prompt_sandbox.py` process, answering one render at a time over its pipes."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-P", prompt_sandbox.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            close_fds=True)
        try:
            self._answer(STARTUP_SECONDS)
        except _WorkerLost:
            self.stop(kill=True)
            raise PromptError(f"the template renderer did not start within {STARTUP_SECONDS} s; try again",
                              bound="busy") from None

    def ask(self, request: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
        try:
            write_message(self.process.stdin, request)
        except OSError as exc:
            raise _WorkerLost() from exc
        return self._answer(wall_seconds)

    def _answer(self, wall_seconds: float) -> dict[str, Any]:
        ready, _, _ = select.select([self.process.stdout], [], [], wall_seconds)
        if not ready:
            raise _WorkerLost()
        try:
            answer = read_message(self.process.stdout)  # written in one piece once it starts
        except ValueError as exc:  # cut short: the worker died mid-answer
            raise _WorkerLost() from exc
        if answer is None:
            raise _WorkerLost()
        return answer

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.stdin.close()  # the worker exits at end of input
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        if not self.process.stdin.closed:
            self.process.stdin.close()


class RenderPool:
    """At most `size` render workers per process, started on demand and kept for the next render.

    A render waits for a free worker up to its wall time, else RenderBusy: a burst of
    hostile templates queues here instead of taking every core.
    """

    def __init__(self, size: int):
        self.size = max(1, size)
        self.pid = os.getpid()
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._started = 0
        self._lock = threading.Lock()

    def render(self, request: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
        worker = self._acquire(wall_seconds)
        while worker.process.poll() is not None:  # died while idle (killed from outside): start another
            self._retire(worker)
            worker = self._acquire(wall_seconds)
        try:
            answer = worker.ask(request, wall_seconds)
        except _WorkerLost:
            self._retire(worker)
            return {"error": f"the template did not finish rendering within {wall_seconds:g} s (the limit), "
                             "so it was stopped", "line": None, "bound": "time"}
        self._idle.put(worker)
        return answer

    def _acquire(self, wait_seconds: float) -> _Worker:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                if self._started < self.size:
                    self._started += 1
                    break
            try:
                return self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RenderBusy("too many templates are rendering right now; try again in a moment",
                                 bound="busy") from None
        try:
            return _Worker()
        except BaseException:
            with self._lock:
                self._started -= 1
            raise

    def _retire(self, worker: _Worker) -> None:
        worker.stop(kill=True)
        with self._lock:
            self._started -= 1

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


_pools: dict[int, RenderPool] = {}
_pools_lock = threading.Lock()


def _pool(size: int) -> RenderPool:
    """This process's pool (a forked web or job worker starts its own)."""
    pid = os.getpid()
    with _pools_lock:
        pool = _pools.get(pid)
        if pool is None or pool.size != max(1, size):
            if pool is not None:
                pool.close()
            pool = _pools[pid] = RenderPool(size)
        return pool


@atexit.register
def _close_pools() -> None:
    pool = _pools.get(os.getpid())
    if pool is not None:
        pool.close()
