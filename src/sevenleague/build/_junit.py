"""Test counts from pytest's JUnit XML, the one report format every CI tool reads."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCounts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped

    @property
    def ok(self) -> bool:
        """At least one test ran, and none failed: a kind with no tests is not a passing kind."""
        return self.passed > 0 and self.failures == 0 and self.errors == 0

    def to_json(self) -> dict[str, float | int]:
        return {"tests": self.tests, "passed": self.passed, "failures": self.failures,
                "errors": self.errors, "skipped": self.skipped, "seconds": round(self.seconds, 3)}


def parse_junit(text: str) -> TestCounts:
    """Sum every <testsuite> (pytest writes one inside <testsuites>, older versions bare)."""
    root = ElementTree.fromstring(text)  # noqa: S314 - pytest's own report, written in the build's folder
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = TestCounts()
    for suite in suites:
        total = TestCounts(
            tests=total.tests + int(suite.get("tests", 0)),
            failures=total.failures + int(suite.get("failures", 0)),
            errors=total.errors + int(suite.get("errors", 0)),
            skipped=total.skipped + int(suite.get("skipped", 0)),
            seconds=total.seconds + float(suite.get("time", 0.0)),
        )
    return total


def read_junit(path: Path) -> TestCounts:
    if not path.exists():
        return TestCounts()
    return parse_junit(path.read_text())


def failed_test_names(text: str, limit: int = 5) -> list[str]:
    """The first failing tests, as `file::name`, so a build's reason can name them."""
    names = []
    for case in ElementTree.fromstring(text).iter("testcase"):  # noqa: S314 - as above
        if case.find("failure") is not None or case.find("error") is not None:
            names.append(f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":"))
    return names[:limit]
