"""Where and in which precision a model runs: picked from what the machine has.

:func:`select_compute` is a pure function of the request and a :class:`Hardware`
description, so every branch is testable on any machine; :func:`detect_hardware` fills
the description in from torch.

Defaults, fastest first:

===========================  ================================================
machine                      plan
===========================  ================================================
CUDA GPU with bf16 (Ampere+) ``cuda`` + ``bf16`` weights (open_clip's mixed lp)
older CUDA GPU               ``cuda`` + ``fp16`` weights
CPU with AVX-512 BF16 / AMX  ``cpu`` + fp32 weights under bf16 autocast
any other CPU                ``cpu`` + ``fp32``
===========================  ================================================

Precision names are open_clip's (``create_model(precision=...)``): ``fp16``/``bf16`` cast
the weights of linear layers and keep layer norms in fp32; ``amp_bf16`` keeps fp32
weights and runs under ``torch.autocast``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal, cast, get_args

import torch

from scoring.errors import DeviceUnavailableError

__all__ = ["ComputePlan", "Hardware", "Precision", "detect_hardware", "select_compute"]

Precision = Literal["fp32", "fp16", "bf16", "amp_bf16"]
PRECISIONS: Final[tuple[str, ...]] = get_args(Precision)
_DEVICE = re.compile(r"^(cpu|cuda)(?::(\d{1,3}))?$")


@dataclass(frozen=True)
class Hardware:
    """What the machine offers, as far as model placement cares."""

    cuda_devices: int = 0
    cuda_bf16: bool = False
    cpu_bf16: bool = False


@dataclass(frozen=True)
class ComputePlan:
    """A device and a precision that exist together on this machine."""

    device: str
    precision: Precision

    @property
    def device_type(self) -> str:
        """``"cuda"`` or ``"cpu"``."""
        return self.device.split(":", 1)[0]

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The autocast dtype, for precisions that run under autocast."""
        return torch.bfloat16 if self.precision == "amp_bf16" else None

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype images must have when they enter the model."""
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the block under autocast when the plan says so (a no-op otherwise)."""
        dtype = self.autocast_dtype
        if dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=dtype):
            yield


def detect_hardware() -> Hardware:
    """Ask torch what this machine has."""
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cpu = getattr(torch, "cpu", None)
    # torch.cpu's feature probes are private; a torch without them just gets fp32 on CPU.
    cpu_bf16 = any(
        bool(getattr(cpu, probe, lambda: False)())
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    return Hardware(
        cuda_devices=cuda,
        cuda_bf16=bool(cuda) and torch.cuda.is_bf16_supported(),
        cpu_bf16=cpu_bf16,
    )


def select_compute(
    device: str | None = None,
    precision: str | None = None,
    *,
    hardware: Hardware | None = None,
) -> ComputePlan:
    """The plan for ``device``/``precision``, each picked automatically when None.

    Raises :class:`DeviceUnavailableError` for a device or precision the machine lacks
    (``cuda`` without a GPU, ``amp_bf16`` on a CPU without bf16 instructions) and for
    low-precision weights on CPU, which run slower there than fp32, never faster.
    """
    hw = hardware if hardware is not None else detect_hardware()
    if device is None:
        device = "cuda" if hw.cuda_devices else "cpu"
    match = _DEVICE.match(device)
    if match is None:
        raise DeviceUnavailableError(
            f"unsupported device {device!r}: use 'cpu', 'cuda' or 'cuda:N'"
        )
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        if not hw.cuda_devices:
            raise DeviceUnavailableError(f"device {device!r} requested but CUDA is not available")
        if index is not None and int(index) >= hw.cuda_devices:
            raise DeviceUnavailableError(
                f"device {device!r} requested but this machine has {hw.cuda_devices} CUDA device(s)"
            )
    if precision is None:
        if kind == "cuda":
            precision = "bf16" if hw.cuda_bf16 else "fp16"
        else:
            precision = "amp_bf16" if hw.cpu_bf16 else "fp32"
    if precision not in PRECISIONS:
        raise DeviceUnavailableError(
            f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}"
        )
    bf16 = hw.cuda_bf16 if kind == "cuda" else hw.cpu_bf16
    if "bf16" in precision and not bf16:
        raise DeviceUnavailableError(f"precision {precision!r} needs bf16 support on {kind}")
    if kind == "cpu" and precision in ("fp16", "bf16"):
        raise DeviceUnavailableError(
            f"precision {precision!r} casts weights, which CPUs run slower than fp32: "
            "use 'fp32' or 'amp_bf16' on CPU"
        )
    return ComputePlan(device=device, precision=cast(Precision, precision))
