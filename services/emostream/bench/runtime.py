"""`emostream bench runtime`: the CPU worker's two networks on eager torch and on ONNX Runtime.

The same inputs, the same thread count, interleaved in one run: the classifier (the packaged
model, each face with its mirror as the worker runs it) at several batch sizes, and YuNet on a
full frame and on batches of 64 px track windows. Reports ms per call (the best of ``--repeats``
rounds, each the mean of several calls) and the largest output difference between the two.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable

import torch

from emostream.bench import add_bench
from emostream.onnx_cpu import cpu_network

HELP = "classifier and YuNet ms per call on eager torch vs ONNX Runtime (CPU)"


def register(subparsers) -> None:
    """Add `bench runtime`."""
    b = add_bench(subparsers, "runtime", run_bench, HELP)
    b.add_argument("--batch-sizes", default="1,4,16", help="faces per classifier call")
    b.add_argument("--windows", default="1,4,16", help="64 px windows per YuNet call")
    b.add_argument("--threads", type=int, default=1, help="threads of both runtimes")
    b.add_argument("--repeats", type=int, default=5, help="rounds per setting (best kept)")


def _ms_per_call(fn: Callable[[], object], repeats: int, calls: int = 5) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return round(best * 1000, 3)


def _compare(net: torch.nn.Module, twin, x: torch.Tensor, repeats: int) -> dict:
    """Both runtimes on ``x``: ms per call, speed-up, largest output difference."""
    with torch.inference_mode():
        eager = _ms_per_call(lambda: net(x), repeats)
        ort = _ms_per_call(lambda: twin(x), repeats)
        a, b = net(x), twin(x)
    pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
    diff = max(float((p.float() - q).abs().max()) for p, q in pairs)
    return {
        "torch_ms": eager,
        "onnxruntime_ms": ort,
        "speedup": round(eager / ort, 2),
        "max_abs_diff": diff,
    }


def _classifier(batch_sizes: list[int], threads: int, repeats: int) -> list[dict]:
    from emostream.models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint

    model = load_checkpoint(DEFAULT_CHECKPOINT)
    size = model.preprocessing.input_size
    gen = torch.Generator().manual_seed(0)
    twin = cpu_network(
        model,
        torch.rand(2, 3, size, size, generator=gen),
        (0,),
        "onnxruntime",
        threads,
        "classifier",
    )
    rows = []
    for n in batch_sizes:  # each face with its mirror: 2n images a call, as the worker runs it
        x = torch.rand(2 * n, 3, size, size, generator=gen)
        rows.append({"faces": n, "images": 2 * n, **_compare(model, twin, x, repeats)})
    return rows


def _yunet(windows: list[int], threads: int, repeats: int) -> list[dict]:
    from emostream.vision.yunet_torch import load_yunet

    net = load_yunet("cpu")
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, 64, 96, generator=gen) * 255
    twin = cpu_network(net, example, (0, 2, 3), "onnxruntime", threads, "yunet")
    shapes = [("frame 480 x 288", (1, 3, 288, 480))]
    shapes += [(f"{n} window(s) 64 x 64", (n, 3, 64, 64)) for n in windows]
    rows = []
    for name, shape in shapes:
        x = torch.rand(*shape, generator=gen) * 255
        rows.append({"input": name, **_compare(net, twin, x, repeats)})
    return rows


def run_bench(args) -> int:
    torch.set_num_threads(args.threads)
    results = {
        "benchmark": "runtime",
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "classifier": _classifier(
            [int(b) for b in args.batch_sizes.split(",")], args.threads, args.repeats
        ),
        "yunet": _yunet([int(w) for w in args.windows.split(",")], args.threads, args.repeats),
    }
    print(json.dumps(results) if args.json else json.dumps(results, indent=2))
    return 0
