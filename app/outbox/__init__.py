"""The transactional outbox: side effects on Redis recorded in the database transaction that causes them.

A row is written in the same transaction as the generation (or Stripe event) that needs a job, dispatched
right after that transaction commits, and swept again periodically (workers/maintenance.py) when the
dispatch failed or the process died in between. See services.py.
"""
