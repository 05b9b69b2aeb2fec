"""One build, step by step: each step a small function with its own result.

A step returns a one-line summary, or raises `StepFailed` naming why the build cannot
go on. Steps run in order and publish comes last, so a build that fails anywhere
publishes nothing and the previous package stays what hosts install.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _steps_package, _steps_source, _steps_tests
from ._context import BuildContext, StepFailed
from ._runner import Cancelled
from ._store import CANCELLED, FAILED, PASSED, Build

Stepper = Callable[[BuildContext], str]

STEPS: tuple[tuple[str, Stepper], ...] = (
    ("checkout", _steps_source.step_checkout),
    ("environment", _steps_source.step_environment),
    ("wheel", _steps_source.step_wheel),
    ("unit tests", _steps_tests.step_unit),
    ("integration tests", _steps_tests.step_integration),
    ("performance tests", _steps_tests.step_performance),
    ("all three kinds", _steps_tests.step_all_kinds),
    ("performance comparison", _steps_tests.step_compare_performance),
    ("code analysis", _steps_tests.step_analysis),
    ("metric names", _steps_tests.step_metric_names),
    ("docs", _steps_package.step_docs),
    ("package", _steps_package.step_package),
    ("publish", _steps_package.step_publish),
)


def file_entry(path: Path, root: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"path": str(path), "name": str(path.relative_to(root)), "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def list_artifacts(artifacts: Path) -> list[dict[str, Any]]:
    """Every file the build kept, with its sha256, except the pages of the HTML docs."""
    entries = []
    for path in sorted(artifacts.rglob("*")):
        relative = path.relative_to(artifacts)
        if path.is_file() and (relative.parts[0] != "docs" or relative == Path("docs/index.html")):
            entries.append(file_entry(path, artifacts))
    return entries


def run_build(ctx: BuildContext) -> Build:
    """Run every step in order; the first failing step ends the build with its reason."""
    build_id = ctx.build.id
    state, reason = PASSED, ""
    for name, step in STEPS:
        position = ctx.store.start_step(build_id, name)
        ctx.runner.say(f"==> {name}")
        try:
            summary = step(ctx)
        except Cancelled:
            ctx.store.finish_step(build_id, position, CANCELLED, "cancelled")
            state, reason = CANCELLED, f"cancelled during step {name}"
            break
        except StepFailed as failure:
            ctx.store.finish_step(build_id, position, FAILED, str(failure))
            ctx.runner.say(f"FAILED: {failure}")
            if failure.go_on:
                continue
            state, reason = FAILED, f"{name}: {failure}"
            break
        except Exception as error:  # a bug in a step must not leave the build running
            ctx.store.finish_step(build_id, position, FAILED, f"internal error: {error!r}")
            ctx.runner.say(f"INTERNAL ERROR in step {name}: {error!r}")
            state, reason = FAILED, f"{name}: internal error in the build service: {error!r}"
            break
        ctx.store.finish_step(build_id, position, PASSED, summary)
        ctx.runner.say(f"    {summary}")
    ctx.runner.say(f"==> build {build_id} {state}" + (f": {reason}" if reason else ""))
    ctx.record(artifacts=list_artifacts(ctx.artifacts))
    return ctx.store.finish(build_id, state, reason)
