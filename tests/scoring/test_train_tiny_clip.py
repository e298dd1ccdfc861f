"""The training script still runs end to end (a couple of steps; it never touches the pin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scoring.pretrained import REGISTRY_PATH


def test_training_script_smoke(tmp_path: Path, project_root: Path) -> None:
    registry = REGISTRY_PATH.read_bytes()
    out = tmp_path / "tiny.safetensors"
    command = [
        sys.executable,
        str(project_root / "scripts/train_tiny_clip.py"),
        *("--steps", "2", "--batch", "8", "--eval-count", "8", "--no-pin", "--out", str(out)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert "held-out zero-shot accuracy, colour x shape" in result.stdout
    assert REGISTRY_PATH.read_bytes() == registry
