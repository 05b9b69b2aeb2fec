"""The queue worker inside the build service: one build at a time by default.

Builds run in threads of the service process; their commands run as child processes
(see `_runner`). When the service stops, running builds are failed on purpose and
their processes killed; when it died instead, `recover` does the same at the next
start, so no build is ever left `running`.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from ._context import BuildContext
from ._environment import build_python
from ._paths import BuildPaths
from ._pipeline import run_build
from ._runner import CommandRunner, build_mark, kill_build_processes
from ._settings import read_settings, service_settings
from ._store import FAILED, Build, BuildStore

INTERRUPTED = "interrupted: the build service stopped"
KEEP_ARTIFACTS = 30  # builds per service whose artifacts stay on disk; packages stay in the pool


class BuildWorker:
    def __init__(self, paths: BuildPaths, store: BuildStore, workers: int = 1) -> None:
        self.paths = paths
        self.store = store
        self.workers = workers
        self._wake = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._running: dict[int, CommandRunner] = {}

    def recover(self) -> list[int]:
        """Fail what a dead service left running, and kill what those builds had started."""
        recovered = self.store.recover(INTERRUPTED)
        for build_id in recovered:
            kill_build_processes(build_mark(self.paths.database, build_id))
            shutil.rmtree(self.paths.work / str(build_id), ignore_errors=True)
        return recovered

    def start(self) -> None:
        self.recover()
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"build-worker-{n + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def cancel(self, build_id: int) -> bool:
        """Cancel a queued or running build; False when it had already finished."""
        build = self.store.get(build_id)
        if build.finished:
            return False
        runner = self._running.get(build_id)
        self.store.finish(build_id, "cancelled", "cancelled on request")
        if runner is not None:
            runner.cancel()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for build_id, runner in list(self._running.items()):
            self.store.finish(build_id, FAILED, INTERRUPTED)
            runner.cancel()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                build = self.store.claim_next()
                if build is None:
                    self._wake.wait(timeout=2.0)
                    continue
            self.execute(build)

    def execute(self, build: Build) -> Build:
        work = self.paths.work / str(build.id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        artifacts = self.paths.artifacts / build.service / str(build.id)
        artifacts.mkdir(parents=True, exist_ok=True)
        log_path = artifacts / "build.log"
        self.store.update_record(build.id, log=str(log_path), artifacts_dir=str(artifacts))
        settings = read_settings(self.paths.settings)
        with log_path.open("a", encoding="utf-8") as log:
            runner = CommandRunner(build_mark(self.paths.database, build.id), log)
            self._running[build.id] = runner
            ctx = BuildContext(
                build=build, store=self.store, paths=self.paths,
                settings=service_settings(settings, build.service), runner=runner, python=build_python(),
                apt_url=str(settings.get("apt_url", "")),
                ecosystem=str(settings.get("ecosystem", "sevenleague")),
                work=work, artifacts=artifacts,
                checkout=work / "src",
            )
            try:
                return run_build(ctx)
            finally:
                self._running.pop(build.id, None)
                shutil.rmtree(work, ignore_errors=True)
                prune_artifacts(artifacts.parent, KEEP_ARTIFACTS)


def prune_artifacts(service_dir: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` builds' artifacts: the records and the apt pool stay."""
    builds = sorted((p for p in service_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    removed = builds[:-keep] if keep > 0 else builds
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def log_slice(path: Path, offset: int) -> tuple[str, int]:
    """The log from `offset` on, and the offset to ask for next (for following a build)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            data = log.read()
    except FileNotFoundError:
        return "", offset
    return data.decode("utf-8", "replace"), offset + len(data)
