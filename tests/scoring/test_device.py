"""Device and precision selection, for every kind of machine, decided on this one."""

from __future__ import annotations

import pytest
import torch

from scoring.device import ComputePlan, Hardware, detect_hardware, select_compute
from scoring.errors import DeviceUnavailableError

CPU_ONLY = Hardware()
CPU_BF16 = Hardware(cpu_bf16=True)
AMPERE = Hardware(cuda_devices=2, cuda_bf16=True, cpu_bf16=True)
VOLTA = Hardware(cuda_devices=1, cuda_bf16=False)


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [
        (CPU_ONLY, ComputePlan("cpu", "fp32")),
        (CPU_BF16, ComputePlan("cpu", "amp_bf16")),
        (AMPERE, ComputePlan("cuda", "bf16")),
        (VOLTA, ComputePlan("cuda", "fp16")),
    ],
)
def test_default_plan_is_the_fastest_the_machine_supports(
    hardware: Hardware, expected: ComputePlan
) -> None:
    assert select_compute(hardware=hardware) == expected


def test_cpu_can_be_forced_on_a_gpu_machine() -> None:
    assert select_compute("cpu", hardware=AMPERE) == ComputePlan("cpu", "amp_bf16")
    assert select_compute("cpu", "fp32", hardware=AMPERE) == ComputePlan("cpu", "fp32")


def test_a_numbered_gpu_must_exist() -> None:
    assert select_compute("cuda:1", hardware=AMPERE).device == "cuda:1"
    with pytest.raises(DeviceUnavailableError, match="2 CUDA device"):
        select_compute("cuda:2", hardware=AMPERE)


def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        select_compute("cuda", hardware=CPU_BF16)


@pytest.mark.parametrize("device", ["mps", "cuda:x", "gpu", "cpu:0:1", ""])
def test_devices_outside_the_allow_list_are_refused(device: str) -> None:
    with pytest.raises(DeviceUnavailableError, match="unsupported device"):
        select_compute(device, hardware=AMPERE)


def test_bf16_needs_hardware_support() -> None:
    with pytest.raises(DeviceUnavailableError, match="needs bf16"):
        select_compute("cpu", "amp_bf16", hardware=CPU_ONLY)
    with pytest.raises(DeviceUnavailableError, match="needs bf16"):
        select_compute("cuda", "bf16", hardware=VOLTA)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_low_precision_weights_are_refused_on_cpu(precision: str) -> None:
    with pytest.raises(DeviceUnavailableError, match="slower than fp32"):
        select_compute("cpu", precision, hardware=CPU_BF16)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(DeviceUnavailableError, match="unknown precision"):
        select_compute("cpu", "int8", hardware=CPU_BF16)


def test_plan_dtypes() -> None:
    assert ComputePlan("cpu", "amp_bf16").autocast_dtype is torch.bfloat16
    assert ComputePlan("cpu", "amp_bf16").input_dtype is torch.float32
    assert ComputePlan("cuda", "fp16").autocast_dtype is None
    assert ComputePlan("cuda", "fp16").input_dtype is torch.float16
    assert ComputePlan("cuda:0", "bf16").device_type == "cuda"


def test_autocast_plan_runs_matmuls_in_bf16_on_cpu() -> None:
    a = torch.ones(4, 4)
    with ComputePlan("cpu", "amp_bf16").autocast():
        assert (a @ a).dtype is torch.bfloat16
    with ComputePlan("cpu", "fp32").autocast():
        assert (a @ a).dtype is torch.float32


def test_detected_hardware_gives_a_valid_plan_here() -> None:
    hardware = detect_hardware()
    assert hardware.cuda_devices == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    plan = select_compute(hardware=hardware)
    assert plan.device_type == ("cuda" if hardware.cuda_devices else "cpu")
