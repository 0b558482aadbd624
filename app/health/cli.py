"""`flask workers health`: the workers' own health check, for an orchestrator or a cron job."""
from __future__ import annotations

import click
from flask import Blueprint, current_app

from app.health.checks import worker_report

cli = Blueprint("workers_cli", __name__, cli_group="workers")


@cli.cli.command("health")
@click.option("--min", "minimum", default=1, show_default=True, help="live workers needed to be healthy")
def health(minimum: int) -> None:
    """Count live workers (recent heartbeat, process alive); exit 1 when fewer than --min."""
    try:
        report = worker_report(current_app.extensions["redis"], current_app.config["WORKER_TTL"])
    except Exception as exc:  # noqa: BLE001 - Redis down: unhealthy, with the reason
        click.echo(f"unhealthy: cannot read workers from Redis ({exc})", err=True)
        raise SystemExit(2) from exc
    dead = report.registered - report.live_count
    click.echo(f"{report.live_count} live worker(s), {dead} stale registration(s)")
    for worker in report.live:
        click.echo(f"  {worker.name} on {worker.hostname} pid {worker.pid}, state {worker.get_state()}, "
                   f"last heartbeat {worker.last_heartbeat:%H:%M:%S}")
    if report.live_count < minimum:
        click.echo(f"unhealthy: fewer than {minimum} live worker(s)", err=True)
        raise SystemExit(1)
