"""The torchvision shim: PyPI's CUDA torchvision imports on CPU torch once it has run.

Each case runs in a fresh interpreter, since what is tested is the import itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import torch

from scoring._torchvision_shim import torchvision_build


def _cuda_torchvision_on_cpu_torch() -> bool:
    return "+cu" in (torchvision_build() or "") and torch.version.cuda is None


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_shim_is_needed_exactly_for_a_cuda_torchvision_on_cpu_torch() -> None:
    assert torchvision_build() is not None, "torchvision is part of requirements/scoring.lock"
    # Computed in a fresh interpreter: this one may already have imported torchvision.
    result = _run("from scoring._torchvision_shim import needs_shim; print(needs_shim())")
    assert result.stdout.strip() == str(_cuda_torchvision_on_cpu_torch()), result.stderr


def test_torchvision_and_open_clip_import_after_the_shim() -> None:
    result = _run(
        """
        from scoring._torchvision_shim import install
        install()
        import torchvision, open_clip
        from torchvision.transforms import InterpolationMode
        transform = open_clip.image_transform(32, is_train=False)
        from PIL import Image
        print(tuple(transform(Image.new("RGB", (48, 40))).shape))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 32, 32)"


def test_install_is_idempotent_and_a_no_op_once_torchvision_is_imported() -> None:
    result = _run(
        """
        from scoring._torchvision_shim import install, needs_shim
        first = install()
        import torchvision
        print(first, install(), needs_shim())
        """
    )
    assert result.returncode == 0, result.stderr
    first, second, needed = result.stdout.split()
    assert first == str(_cuda_torchvision_on_cpu_torch())
    assert (second, needed) == ("False", "False")


def test_without_the_shim_a_cuda_torchvision_fails_on_cpu_torch() -> None:
    """Why the shim exists; passes trivially where torchvision imports on its own."""
    result = _run("import torchvision")
    if _cuda_torchvision_on_cpu_torch():
        assert result.returncode != 0
        assert "torchvision::nms does not exist" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
