"""`ThreadPoolWorker`: one RQ worker process that runs many jobs at once, in threads.

A generation is seconds of waiting on the model, so a process can hold many
of them: each job runs in a thread of this process, up to `threads` at once.
It is RQ's own SimpleWorker underneath, so RQ's bookkeeping stays as it is:
every job gets its own Execution in the StartedJobRegistry (kept per thread),
success, failure and `Retry` results go through RQ's handlers, the worker
heartbeats while it waits for a free thread, and abandoned-job handling
(a process killed mid-job) works from the registry entries as usual.

What changes:
- **Claiming.** The main thread takes a job off the queue only when a thread
  is free, so a busy process never sits on jobs another process could run.
- **Job timeouts** use RQ's TimerDeathPenalty (SIGALRM only reaches the main
  thread). The generation's own deadline ends its model calls long before.
- **Shutdown.** SIGTERM/SIGINT stop claiming at once (a blocking dequeue is
  interrupted). Jobs in flight get `grace` seconds to finish; then
  `app.llm.watchdog.interrupt()` stops their model calls, and each job hands
  itself back (requeued once, or failed and refunded, see
  app/generation/tasks.py). A second signal skips what is left of the grace.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus


log = logging.getLogger(__name__)

# After interrupting, time for jobs to hand themselves back (a row update and a Redis write each):
# WORKER_GRACE (25 s) + this stays inside an orchestrator's usual 30 s.
WIND_DOWN_SECONDS = 4.0
MAINTENANCE_SECONDS = 60


class ThreadPoolWorker(SimpleWorker):
    """A SimpleWorker that runs up to `threads` jobs concurrently; see the module docstring."""

    death_penalty_class = TimerDeathPenalty
    threads: int = 8
    grace: float = 25.0

    def __init__(self, *args, threads: int | None = None, grace: float | None = None, **kwargs):
        self._local = threading.local()
        # Registry cleanup (abandoned jobs -> their on_failure refunds) every minute, not every 10.
        kwargs.setdefault("maintenance_interval", MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)
        self.threads = max(1, threads or type(self).threads)
        self.grace = type(self).grace if grace is None else grace
        self._slots = threading.BoundedSemaphore(self.threads)
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="job")
        self._in_flight: set[str] = set()
        self._state_lock = threading.Lock()
        self._idle = threading.Condition(self._state_lock)
        self._claiming = False
        self._cut_grace = threading.Event()
        self._stop_at: float | None = None
        self._tearing_down = False  # from here on a signal only shortens the wait

    # RQ keeps the running job's Execution on the worker; with many jobs, each thread keeps its own.
    @property
    def execution(self):
        return getattr(self._local, "execution", None)

    @execution.setter
    def execution(self, value) -> None:
        self._local.execution = value

    # ------------------------------------------------------------------ claiming

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """Wait for a free thread (heartbeating), then claim one job as RQ does."""
        last_beat = time.monotonic()
        while not self._slots.acquire(timeout=0.5):
            if self._stop_requested:
                raise StopRequested()
            if time.monotonic() - last_beat > 15:
                self.heartbeat()
                last_beat = time.monotonic()
        try:
            if self._stop_requested:
                raise StopRequested()
            self._claiming = True
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            finally:
                self._claiming = False
        except BaseException:
            self._slots.release()
            raise
        if result is None:
            self._slots.release()
        return result

    def execute_job(self, job, queue) -> None:
        """Start the job in a thread and return at once (its slot is already held)."""
        with self._state_lock:
            self._in_flight.add(job.id)
        self._pool.submit(self._perform_in_thread, job, queue)

    def _perform_in_thread(self, job, queue) -> None:
        try:
            self.prepare_execution(job)
            self.perform_job(job, queue)
        except Exception:
            log.exception("worker %s: job %s crashed outside RQ's handlers", self.name, job.id)
        finally:
            with self._state_lock:
                self._in_flight.discard(job.id)
                if not self._in_flight:
                    self._idle.notify_all()
            self._slots.release()
            if not self._in_flight and not self._stop_requested:
                try:
                    self.set_state(WorkerStatus.IDLE)
                except Exception:  # Redis away: the next dequeue reports it
                    pass

    def get_heartbeat_ttl(self, job) -> int:
        # Never shorter than the job may run: a thread does not heartbeat its own execution.
        return super().get_heartbeat_ttl(job) + int(self.grace)

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        """Stop claiming; break out of a blocking dequeue; running jobs carry on."""
        self._stop_requested = True
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        if self.scheduler:
            self.stop_scheduler()
        if not self._tearing_down and (self._claiming or not self._in_flight):
            raise StopRequested()

    def request_force_stop(self, signum, frame) -> None:
        """A second signal: no more grace, interrupt what is running now."""
        if self._shutdown_requested_date is not None:
            from datetime import timedelta

            from rq.utils import now
            if now() - self._shutdown_requested_date < timedelta(seconds=1):
                return  # the same Ctrl-C delivered twice (terminal and supervisor)
        log.warning("worker %s: second stop signal, interrupting jobs in flight", self.name)
        self._cut_grace.set()

    def teardown(self) -> None:
        """Let jobs in flight finish within the grace, interrupt the rest, then unregister."""
        self._tearing_down = True
        if not self.is_horse:
            self._drain()
        super().teardown()

    def _drain(self) -> None:
        if not self._stop_requested:  # burst mode ran out of jobs: wait for the last ones, no grace
            with self._state_lock:
                while self._in_flight and not self._stop_requested:
                    self._idle.wait(0.2)
        deadline = (self._stop_at or time.monotonic()) + self.grace
        with self._state_lock:
            if self._in_flight:
                log.info("worker %s: waiting up to %.0fs for %d job(s) in flight",
                         self.name, self.grace, len(self._in_flight))
            while self._in_flight and not self._cut_grace.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(min(left, 0.2))
            interrupted = len(self._in_flight)
        if interrupted:
            from app.llm import watchdog
            log.warning("worker %s: grace over, interrupting %d job(s)", self.name, interrupted)
            watchdog.interrupt()
            with self._state_lock:
                wind_down = time.monotonic() + WIND_DOWN_SECONDS
                while self._in_flight and time.monotonic() < wind_down:
                    self._idle.wait(0.2)
                if self._in_flight:
                    log.error("worker %s: %d job(s) did not stop; RQ will find them abandoned",
                              self.name, len(self._in_flight))
        self._pool.shutdown(wait=False, cancel_futures=True)
