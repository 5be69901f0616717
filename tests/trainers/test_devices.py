"""Device specs, the device facts recorded with a job, peak memory, and the acceleration choices."""

from __future__ import annotations

import pytest
import torch

from nasdb.schema.errors import InvalidRequest
from nasdb.trainers.acceleration import Acceleration, autocast, place_splits
from nasdb.trainers.datasets import load_dataset
from nasdb.trainers.devices import (
    PeakMemory,
    cpu_name,
    describe_device,
    parse_device,
    parse_gpus,
    select_device,
)
from nasdb.trainers.loop import train

NO_GPU = not torch.cuda.is_available()


@pytest.mark.parametrize(("spec", "canonical"), [
    ("cpu", "cpu"), ("CPU", "cpu"), (" auto ", "auto"), (None, "auto"), ("", "auto"),
    ("cuda", "cuda"), ("cuda:0", "cuda:0"), ("cuda:12", "cuda:12"),
])
def test_device_specs_parse_to_one_spelling(spec: str | None, canonical: str) -> None:
    assert parse_device(spec) == canonical


@pytest.mark.parametrize("spec", ["tpu", "gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", "cpu:0"])
def test_a_malformed_device_is_refused_with_the_accepted_forms(spec: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_device(spec)
    assert str(err.value) == (f"unknown device {spec!r}; expected auto, cpu, cuda or cuda:N "
                              "(N = a GPU index, 0 first)")
    assert err.value.exit_code == 2


def test_select_device_checks_this_machine() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(None).type == ("cpu" if NO_GPU else "cuda")
    if NO_GPU:
        for spec in ("cuda", "cuda:1"):
            with pytest.raises(InvalidRequest) as err:
                select_device(spec)
            assert str(err.value) == (f"device {spec!r} was requested but torch "
                                      f"{torch.__version__} sees no CUDA GPU on this machine; "
                                      "use --device cpu")
    else:
        count = torch.cuda.device_count()
        assert select_device(f"cuda:{count - 1}") == torch.device(f"cuda:{count - 1}")
        with pytest.raises(InvalidRequest, match=f"this machine has {count} CUDA GPU"):
            select_device(f"cuda:{count}")


def test_gpu_lists() -> None:
    with pytest.raises(InvalidRequest, match="expected 'all' or GPU indices like 0,1"):
        parse_gpus("first")
    if NO_GPU:
        with pytest.raises(InvalidRequest) as err:
            parse_gpus("all")
        assert str(err.value).startswith("--gpus all: torch ") and "sees no CUDA GPU" in str(err.value)
    else:
        count = torch.cuda.device_count()
        assert parse_gpus("all") == list(range(count))
        assert parse_gpus(" 0 ") == [0]
        with pytest.raises(InvalidRequest, match="not 99"):
            parse_gpus("0,99")


def test_the_cpu_is_described_by_name_threads_and_memory() -> None:
    facts = describe_device(torch.device("cpu"))
    assert facts["device"] == "cpu"
    assert facts["device_name"] == cpu_name() != ""
    assert facts["cpu_threads"] == torch.get_num_threads() >= 1
    assert facts["device_memory_bytes"] > 2**28
    assert facts["torch_version"] == torch.__version__


@pytest.mark.skipif(NO_GPU, reason="no CUDA device")
def test_a_gpu_is_described_by_name_memory_and_cuda_version() -> None:
    facts = describe_device(torch.device("cuda:0"))
    props = torch.cuda.get_device_properties(0)
    assert facts["device_name"] == props.name
    assert facts["device_memory_bytes"] == props.total_memory
    assert facts["cuda_version"] == torch.version.cuda


def test_peak_memory_sees_a_real_allocation_and_resets() -> None:
    peak = PeakMemory(torch.device("cpu"))
    peak.reset()
    before = peak.read()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    during = peak.read()
    del block
    assert during - before >= 60 * 2**20
    peak.reset()
    assert peak.read() < during


def test_acceleration_defaults_per_device() -> None:
    cpu = torch.device("cpu")
    assert Acceleration.resolve(cpu) == Acceleration("fp32", False, False)
    assert Acceleration.resolve(cpu, precision="bf16", channels_last=True) == \
        Acceleration("bf16", True, False)
    assert Acceleration.resolve(cpu, compile="auto", steps=10**9).compile is False  # CUDA only
    assert Acceleration.resolve(cpu, compile="on").compile is True
    with pytest.raises(InvalidRequest, match="precision 'fp8' is not one of auto, fp32, bf16"):
        Acceleration.resolve(cpu, precision="fp8")
    with pytest.raises(InvalidRequest, match="compile 'maybe' is not one of off, on, auto"):
        Acceleration.resolve(cpu, compile="maybe")
    if not NO_GPU:
        gpu = Acceleration.resolve(torch.device("cuda"), steps=10)
        assert gpu.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
        assert gpu.channels_last and not gpu.compile


def test_bf16_and_channels_last_train_the_same_loop() -> None:
    """The CUDA path's switches run (and learn) on the CPU too: bf16 autocast, NHWC data."""
    digits = load_dataset("digits")
    acc = Acceleration("bf16", True, False)
    x, y = place_splits(torch.device("cpu"), acc, digits.x_train, digits.y_train)
    assert x.is_contiguous(memory_format=torch.channels_last) and y.dim() == 1
    with autocast(torch.device("cpu"), acc):
        assert torch.nn.Linear(4, 2)(torch.ones(1, 4)).dtype == torch.bfloat16
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(8 * 64, 10))
    result = train(module, digits, {"epochs": 3, "batch_size": 64, "lr": 3e-3,
                                    "early_stop_patience": 0}, acceleration=acc)
    assert result.acceleration == acc
    assert result.test_acc > 0.8
    assert all(t.dtype == torch.float32 for t in result.state_dict.values())  # weights stay fp32


def test_compiled_modules_are_cached_per_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second job of the same architecture reuses the compiled module (its own initial weights
    loaded in) and trains exactly as eager training does."""
    from nasdb.trainers import acceleration

    monkeypatch.setattr(acceleration, "COMPILE_BACKEND", "eager")  # inductor: minutes on a CPU
    monkeypatch.setattr(acceleration, "_compiled", type(acceleration._compiled)())
    digits = load_dataset("digits")
    hp = {"epochs": 1, "batch_size": 128, "early_stop_patience": 0}

    def module(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                   torch.nn.Linear(4 * 36, 10))

    compiled = Acceleration("fp32", False, True)
    cached = []
    for seed in (1, 2):
        job = module(seed)
        result = train(job, digits, hp, acceleration=compiled, compile_key="C4k3-relu-D10")
        eager = train(module(seed), digits, hp)
        assert result.predictions == eager.predictions
        assert all(torch.equal(result.state_dict[k], eager.state_dict[k]) for k in eager.state_dict)
        assert all(torch.equal(v, result.state_dict[k]) for k, v in job.state_dict().items())
        assert list(acceleration._compiled) == ["C4k3-relu-D10"]
        cached.append(acceleration._compiled["C4k3-relu-D10"])
        assert cached[-1][0] is not job
    assert cached[0] == cached[1]  # the second job reused the first one's compiled module
