"""The Containerfile passes hadolint with no finding, and is what the cluster manifests expect: multi-stage, a
numeric non-root user, a HEALTHCHECK on /healthz. (image/smoke-test.sh builds and runs it; .ci/run calls it.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "hadolint"
    return subprocess.run(
        [str(binary), "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_hadolint_finds_nothing() -> None:
    result = hadolint(CONTAINERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_would_catch_a_root_user(tmp_path: Path) -> None:
    text = CONTAINERFILE.read_text()
    broken = text.replace("USER 65532:65532", "USER root")
    assert broken != text
    (tmp_path / "Containerfile").write_text(broken)
    result = hadolint(tmp_path / "Containerfile")
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # last USER is root
    assert "DL3066" in result.stdout  # a user name the host cannot resolve (runAsNonRoot needs a number)


def test_final_stage_runs_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    lines = [line for line in CONTAINERFILE.read_text().splitlines() if line and not line.startswith("#")]
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(stages) >= 2, "not multi-stage"
    final = lines[stages[-1] :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users, "no USER in the final stage"
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    assert any(line.startswith("HEALTHCHECK ") for line in final)
    assert "/healthz" in "\n".join(final)
    assert not any(line.startswith(("RUN ", "ADD ")) for line in final), "the final stage builds nothing"
