"""Layer boundaries that the code must keep (ARCHITECTURE.md, "Transactions").

One rule for who commits: the request (a view) or the job (an RQ job, a CLI command) owns the
transaction; services flush. A `.commit()` anywhere else fails here, so the rule stays true. The
workflow steps that must commit below their owner call `app.core.commit_step(reason)` instead.
"""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# Modules that own a transaction, by file name: the request's views and the jobs' entry points.
OWNER_NAMES = {"views.py", "cli.py", "tasks.py", "recovery.py"}
# Owners whose name does not say so, each for its reason.
OWNER_PATHS = {
    "core.py": "commit_step(): the one named way for a workflow step to commit below its owner",
    "db_setup.py": "release_write_lock(): ends a transaction that wrote nothing, for the request",
    "catalog/editor.py": "the template editor's views (built twice, for the site and for a workspace)",
}


def is_owner(path: Path) -> bool:
    relative = path.relative_to(APP)
    return (path.name in OWNER_NAMES or path.name.endswith("_views.py") or "views" in relative.parts[:-1]
            or relative.as_posix() in OWNER_PATHS)


def commits_in(path: Path) -> list[int]:
    """Lines of `<anything>.commit()` calls in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"]


def test_only_transaction_owners_commit():
    offenders = [f"app/{path.relative_to(APP)}:{line}" for path in sorted(APP.rglob("*.py")) if not is_owner(path)
                 for line in commits_in(path)]
    assert not offenders, ("Services flush; the request or the job commits. Commit in the caller, or, for a step "
                           "that must be durable before an outside effect, use app.core.commit_step(reason) "
                           f"and list it in ARCHITECTURE.md: {offenders}")


def test_no_commit_flags():
    """`commit=` flags let a caller choose who commits; the rule leaves nothing to choose."""
    flagged = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
                flagged += [f"app/{path.relative_to(APP)}:{node.lineno} {node.name}"
                            for argument in arguments if argument.arg == "commit"]
    assert not flagged, flagged


def test_the_owner_list_names_real_files():
    """An owner listed by path that no longer exists would let a new file of that name commit unseen."""
    assert all((APP / relative).is_file() for relative in OWNER_PATHS)
    assert commits_in(APP / "core.py"), "commit_step() is where the named workflow steps commit"
