"""Project queries shared by pages (the projects page, and every variant card's "add to project")."""
from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.projects.models import Project


def projects_of(workspace_id: int) -> list[Project]:
    """The workspace's projects by name."""
    return list(db.session.scalars(select(Project).where(Project.workspace_id == workspace_id).order_by(Project.name)))
