"""Benchmarks of the training pipeline, distillation overhead, many seeds at once, teacher-vs-student speed and the book.

Run from the repository root (the loaders need the data, e.g. ``KDLIB_DATA=../shared/data``)::

    python benchmarks/run.py                  # pipeline, distillation, stacked seeds, models (~6 min on 2 cores)
    python benchmarks/run.py --notebooks      # ... plus every notebook as nbval runs it (~25 min)
    python benchmarks/run.py --notebooks --suite   # ... plus the whole test suite
    python benchmarks/run.py --only stacked --out /tmp/bench   # one section, results elsewhere

Every figure is a median over ``--repeats`` runs on this machine; the variants compared in a
ratio are timed in turn within each repeat, so a change in the machine's load hits them alike.
Results go to ``benchmarks/results.json`` and ``benchmarks/results.md`` (the book's Performance
appendix includes the latter); notebook and suite timings not re-measured are carried over.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from functools import partial

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks"

GOALS = {
    "fit_over_bare": ("kdlib fit epoch / bare forward+backward+step, same batch size", "<=", 1.15),
    "distill_over_plain": ("distillation epoch (teacher cached) / plain epoch", "<=", 1.1),
    "mnist_10_over_1": ("10 seeds stacked / 1 seed, MNIST MLP 30-30", "<=", 3.0),
    "tiny_10_over_1": ("10 seeds stacked / 1 seed, METR-LA tiny student", "<=", 3.0),
    "small_10_over_1": ("10 seeds stacked / 1 seed, METR-LA small student", "<=", 3.0),
}
STACK_SIZES = (1, 5, 10, 20)  # seeds trained at once in the stacked benchmark


def _median_time(fn: Callable[[], float | None], repeats: int) -> float:
    """Median of ``repeats`` calls; ``fn`` returns its own seconds or None to be timed here."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        own = fn()
        times.append(own if own is not None else time.perf_counter() - t0)
    return statistics.median(times)


def _interleaved(fns: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, float]:
    """Median seconds of each ``fn``, the functions called in turn within each repeat (load drift hits all)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_median_time(fn, 1))
    return {name: statistics.median(t) for name, t in times.items()}


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ---------------------------------------------------------------------------
# 1. Pipeline: naive per-sample DataLoader vs kdlib.fit vs bare compute
# ---------------------------------------------------------------------------


def pipeline(repeats: int, naive_batches: int) -> dict:
    """One epoch of a 784-128-64-10 MLP at batch 64, fed three ways."""
    from kdlib.data import load_mnist
    from kdlib.profiling import naive_mnist_loader, seconds_per_batch
    from kdlib.models import MLP
    from kdlib.train import fit

    data = load_mnist()
    n, bs = data.x_train.shape[0], 64
    batches_per_epoch = -(-n // bs)

    def naive() -> float:
        torch.manual_seed(0)
        spb = seconds_per_batch(MLP((128, 64)), naive_mnist_loader(batch_size=bs), F.cross_entropy, n_batches=naive_batches)
        return spb * batches_per_epoch

    def kdlib_fit() -> float:
        torch.manual_seed(0)
        h = fit(MLP((128, 64)), data.x_train, data.y_train, F.cross_entropy, epochs=1, batch_size=bs,
                progress=False, device="cpu")
        return h.epoch_seconds[0]

    xb = list(data.x_train.split(bs))
    yb = list(data.y_train.split(bs))

    def bare() -> float:
        torch.manual_seed(0)
        model = MLP((128, 64))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        for x, y in zip(xb, yb):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    r = {
        "naive_epoch_s": _median_time(naive, repeats),
        "naive_note": f"timed {naive_batches} batches per repeat, scaled to {batches_per_epoch} batches",
        **_interleaved({"fit_epoch_s": kdlib_fit, "bare_epoch_s": bare}, repeats),
    }
    r["naive_over_fit"] = r["naive_epoch_s"] / r["fit_epoch_s"]  # at most the DataLoader's cost over bare compute
    r["naive_over_bare"] = r["naive_epoch_s"] / r["bare_epoch_s"]
    r["fit_over_bare"] = r["fit_epoch_s"] / r["bare_epoch_s"]
    return r


# ---------------------------------------------------------------------------
# 2. Distillation overhead
# ---------------------------------------------------------------------------


def distillation(repeats: int) -> dict:
    """Epoch cost of distilling the MNIST teacher into a 784-128-64-10 student, three (four) ways."""
    from kdlib import losses
    from kdlib.data import load_mnist
    from kdlib.losses import distillation_loss, softmax_t
    from kdlib.models import MLP
    from kdlib.teachers import load_teacher
    from kdlib.train import fit, predict

    data = load_mnist()
    teacher = load_teacher("mnist-teacher")
    t0 = time.perf_counter()
    cached = predict(teacher, data.x_train)
    cache_s = time.perf_counter() - t0
    loss = partial(distillation_loss, T=4.0, alpha=0.9)

    def epoch(batch_size: int = 64, **kw) -> float:
        torch.manual_seed(0)
        h = fit(MLP((128, 64)), data.x_train, kw.pop("targets"), kw.pop("loss"), epochs=1, batch_size=batch_size,
                progress=False, device="cpu", **kw)
        return h.epoch_seconds[0]

    probs = softmax_t(cached, 4.0)
    cached_loss = partial(losses.distillation_loss_cached, T=4.0, alpha=0.9)
    variants = {"plain_epoch_s": lambda: epoch(targets=data.y_train, loss=F.cross_entropy),
                # where the overhead goes: the extra target gathered per batch, but the plain loss
                "gather_only_epoch_s": lambda: epoch(targets=(data.y_train, probs), loss=lambda z, y, p: F.cross_entropy(z, y)),
                "cached_epoch_s": lambda: epoch(targets=(data.y_train, cached), loss=loss),
                # the teacher's soft targets at T cached, not its logits
                "cached_probs_epoch_s": lambda: epoch(targets=(data.y_train, probs), loss=cached_loss),
                # per-step overhead or per-sample work? the same two epochs at batch 256
                "plain_256_epoch_s": lambda: epoch(256, targets=data.y_train, loss=F.cross_entropy),
                "cached_256_epoch_s": lambda: epoch(256, targets=(data.y_train, cached), loss=loss)}
    r = {
        **_interleaved(variants, repeats),
        "teacher_cache_s": cache_s,
        # the teacher recomputed on every batch (what augmented inputs force): one repeat is enough
        "per_batch_teacher_epoch_s": epoch(targets=data.y_train, loss=loss, teacher=teacher, augment=lambda b: b),
    }
    r["logits_over_plain"] = r["cached_epoch_s"] / r["plain_epoch_s"]
    r["distill_over_plain"] = r["logits_over_plain"]  # the goal: the path the notebooks take (cached logits)
    r["probs_over_plain"] = r["cached_probs_epoch_s"] / r["plain_epoch_s"]
    r["gather_over_plain"] = r["gather_only_epoch_s"] / r["plain_epoch_s"]
    r["distill_over_plain_256"] = r["cached_256_epoch_s"] / r["plain_256_epoch_s"]
    r["per_batch_over_cached"] = r["per_batch_teacher_epoch_s"] / r["cached_epoch_s"]

    # the profile of the overhead: the two losses alone, forward + backward on one batch of logits
    z0, y0, v0 = torch.randn(64, 10), data.y_train[:64], cached[:64]

    def loss_step(fn: Callable, n: int = 2000) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                fn(z0.clone().requires_grad_(True)).backward()
            return (time.perf_counter() - t0) / n
        return run

    r.update(_interleaved({"ce_step_s": loss_step(lambda z: F.cross_entropy(z, y0)),
                           "kd_step_s": loss_step(lambda z: loss(z, y0, v0))}, repeats))
    steps = -(-len(data.y_train) // 64)
    r["steps_per_epoch"] = steps
    r["soft_term_epoch_s"] = (r["kd_step_s"] - r["ce_step_s"]) * steps  # the loss's own share of an epoch
    r["gather_epoch_s"] = r["gather_only_epoch_s"] - r["plain_epoch_s"]
    return r


# ---------------------------------------------------------------------------
# 3. Many seeds at once: kdlib.fit_stacked vs one kdlib.fit run
# ---------------------------------------------------------------------------


def _as_tuple(t: torch.Tensor | tuple) -> tuple:
    return (t,) if isinstance(t, torch.Tensor) else tuple(t)


def _head(t: torch.Tensor | tuple, n: int) -> torch.Tensor | tuple:
    return t[:n] if isinstance(t, torch.Tensor) else tuple(x[:n] for x in t)


def stacked(repeats: int) -> dict:
    """Wall time of K = 1, 5, 10, 20 seeds trained as one stacked model, and of one ``fit`` run (batch 64).

    Also what bounds K = 10: stacking removes per-step overhead (Python, dispatch, optimizer
    bookkeeping), never the per-sample work, so 10 stacked copies cannot cost less than one copy
    stepping on a 10x larger batch (the same number of operations, each on 10x the rows). The
    *work floor* is the ratio of one Adam step at batch 640 to one at batch 64
    (:func:`kdlib.training_step_seconds`).
    """
    from kdlib import (MLP, STUDENT_SIZES, STIDStudent, fit, fit_stacked, l1_loss, load_metr_la_week, load_mnist,
                       seeded_students, traffic_splits, training_step_seconds)

    mnist = load_mnist()
    splits, scaler = traffic_splits(load_metr_la_week())
    train = splits["train"]
    traffic = ((train.x, train.tod), train.y, l1_loss)
    tasks = {  # name -> (make_student, inputs, targets, loss, epochs, goal key)
        "MNIST MLP 30-30": (lambda: MLP((30, 30)), mnist.x_train[:10_000], mnist.y_train[:10_000], F.cross_entropy, 2,
                            "mnist_10_over_1"),
        "METR-LA tiny student": (partial(STIDStudent, train.x.shape[2], scaler, **STUDENT_SIZES["tiny"]), *traffic, 2,
                                 "tiny_10_over_1"),
        "METR-LA small student": (partial(STIDStudent, train.x.shape[2], scaler, **STUDENT_SIZES["small"]), *traffic, 1,
                                  "small_10_over_1"),
    }
    out = {}
    for name, (make, x, y, loss, epochs, goal) in tasks.items():
        kw = {"epochs": epochs, "batch_size": 64, "device": "cpu"}

        def one() -> float:
            model = make()
            return sum(fit(model, x, y, loss, seed=0, **kw).epoch_seconds)

        def many(k: int) -> float:
            return sum(fit_stacked(seeded_students(make, range(k)), x, y, loss, seeds=list(range(k)), **kw)[0].epoch_seconds)

        fit_stacked(seeded_students(make, [0, 1]), _head(x, 256), _head(y, 256), loss, seeds=[0, 1], **kw)  # warm-up
        t = _interleaved({"fit": one, **{str(k): partial(many, k) for k in STACK_SIZES}}, repeats)
        n = (x if isinstance(x, torch.Tensor) else x[0]).shape[0]
        steps = {b: _median_time(lambda b=b: training_step_seconds(
            make(), *(_as_tuple(_head(v, b)) for v in (x, y)), loss), repeats) for b in (64, 640)}
        out[name] = {"samples": n, "epochs": epochs, "one_seed_s": t["fit"], "goal": goal,
                     "step_s_64": steps[64], "step_s_640": steps[640], "work_floor_10": steps[640] / steps[64],
                     "K": {k: {"seconds": t[str(k)], "seeds_per_s": k / t[str(k)], "over_one": t[str(k)] / t["fit"],
                               "over_sequential": t[str(k)] / (k * t["fit"])} for k in STACK_SIZES}}
    return out


# ---------------------------------------------------------------------------
# 4. Teacher vs student
# ---------------------------------------------------------------------------


def models(repeats: int) -> dict:
    """Parameters, FLOPs/sample, latency at batch 1 and 64 for the book's teachers and students."""
    from kdlib.data import load_metr_la_week, load_mnist
    from kdlib.preprocessing import traffic_splits
    from kdlib.models import MLP, STIDStudent
    from kdlib.teachers import load_teacher
    from kdlib.profiling import profile

    mnist = load_mnist()
    splits, scaler = traffic_splits(load_metr_la_week())
    test = splits["test"]

    def img(b: int) -> tuple:
        return (mnist.x_test[:b],)

    def traffic(b: int) -> tuple:
        return (test.x[:b], test.tod[:b])

    entries = {
        "MNIST teacher (SmallCNN)": (load_teacher("mnist-teacher"), img),
        "MNIST student (MLP 30-30)": (MLP((30, 30)), img),
        "METR-LA teacher": (load_teacher("metr-la-teacher"), traffic),
        # the two graph-free student sizes of Part III
        "METR-LA tiny student": (STIDStudent(test.x.shape[2], scaler, hidden=16, node_dim=4, tod_dim=4), traffic),
        "METR-LA small student": (STIDStudent(test.x.shape[2], scaler, hidden=32, node_dim=8, tod_dim=8), traffic),
    }
    return {name: profile(m, fn, repeats=repeats) for name, (m, fn) in entries.items()}


# ---------------------------------------------------------------------------
# 5. The book: each notebook as the test suite runs it, and the whole suite
# ---------------------------------------------------------------------------

_MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(rc, wall, u.ru_maxrss, u.ru_utime + u.ru_stime)
"""


def _measure(cmd: list[str]) -> dict:
    """Wall time, CPU time (all processes under ``cmd``) and peak RSS of the largest one (the notebook's kernel)."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, cwd=ROOT).stdout
    rc, wall, kb, cpu = out.split()
    return {"ok": rc == "0", "wall_s": float(wall), "cpu_s": float(cpu), "peak_mb": int(kb) / 1024}


def notebooks() -> dict:
    nbs = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return {str(p.relative_to(ROOT)): _measure([*pytest, str(p.relative_to(ROOT))]) for p in nbs}


def suite() -> dict:
    return _measure([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def _goal_rows(results: dict) -> list[str]:
    rows = []
    flat = {**results.get("pipeline", {}), **results.get("distillation", {}),
            **{r["goal"]: r["K"][10]["over_one"] for r in results.get("stacked", {}).values()}}
    for key, (what, op, bound) in GOALS.items():
        if key in flat:
            v = flat[key]
            ok = v >= bound if op == ">=" else v <= bound
            rows.append(f"| {what} | {v:.2f}x | {op} {bound}x | {'met' if ok else 'NOT met'} |")
    return rows


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, torch threads: {m['torch_threads']}), "
        f"Python {m['python']}, torch {m['torch']}. Medians over {results['repeats']} repeats.",
        "",
    ]
    if "pipeline" in results:
        p = results["pipeline"]
        lines += [
            "**Training pipeline** (784-128-64-10 MLP, one MNIST epoch at batch 64)",
            "",
            "| pipeline | seconds per epoch |",
            "|---|---|",
            f"| torchvision DataLoader, per-sample `ToTensor` ({p['naive_note']}) | {p['naive_epoch_s']:.2f} "
            f"({p['naive_over_fit']:.1f}x `fit`, {p['naive_over_bare']:.1f}x bare) |",
            f"| `kdlib.fit` on in-memory tensors | {p['fit_epoch_s']:.2f} |",
            f"| bare forward + backward + step on pre-batched tensors | {p['bare_epoch_s']:.2f} |",
            "",
        ]
    if "distillation" in results:
        d = results["distillation"]
        lines += [
            "**Distillation overhead** (same student, one epoch at batch 64; teacher: the MNIST SmallCNN)",
            "",
            "| epoch | seconds |",
            "|---|---|",
            f"| plain supervised | {d['plain_epoch_s']:.2f} |",
            f"| plain supervised, the teacher's soft targets gathered per batch but unused | {d['gather_only_epoch_s']:.2f} "
            f"({d['gather_over_plain']:.2f}x plain) |",
            f"| distillation, teacher logits cached once ({d['teacher_cache_s']:.2f} s to compute) | {d['cached_epoch_s']:.2f} "
            f"({d['logits_over_plain']:.2f}x plain) |",
            f"| distillation, teacher soft targets at T cached (`distillation_loss_cached`) | {d['cached_probs_epoch_s']:.2f} "
            f"({d['probs_over_plain']:.2f}x plain) |",
            f"| distillation, teacher recomputed every batch | {d['per_batch_teacher_epoch_s']:.2f} "
            f"({d['per_batch_over_cached']:.1f}x the cached epoch) |",
            f"| at batch 256: plain / distillation, teacher logits cached | {d['plain_256_epoch_s']:.2f} / "
            f"{d['cached_256_epoch_s']:.2f} ({d['distill_over_plain_256']:.2f}x) |",
            "",
        ]
        if "kd_step_s" in d:
            extra = d["cached_epoch_s"] - d["plain_epoch_s"]
            lines += [
                f"Where the {extra:.2f} s of extra epoch time go: the loss alone, forward and backward on one batch "
                f"of (64, 10) logits, takes {d['ce_step_s'] * 1e6:.0f} µs as cross-entropy and "
                f"{d['kd_step_s'] * 1e6:.0f} µs as `kdlib.distillation_loss` (T = 4, alpha = 0.9): "
                f"{d['soft_term_epoch_s']:.2f} s over the epoch's {d['steps_per_epoch']} steps. Gathering the teacher's "
                f"outputs with each batch adds {d['gather_epoch_s']:.2f} s. Both are fixed per-step costs of a few small "
                "tensor operations, not arithmetic, so they can only shrink with fewer steps (a larger batch) or "
                "fewer operations per step.",
                "",
            ]
    if "stacked" in results:
        lines += [
            "**Many seeds at once** (`kdlib.fit_stacked`: K seeds as one stacked model, batch 64; "
            "one seed: one `kdlib.fit` run; training epochs only)",
            "",
            "| student | seeds | seconds | seeds / s | x one seed | / K sequential runs |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in results["stacked"].items():
            what = f"{name} ({r['samples']:,} samples, {r['epochs']} epoch{'s' if r['epochs'] > 1 else ''})"
            lines.append(f"| {what} | 1, `fit` | {r['one_seed_s']:.2f} | {1 / r['one_seed_s']:.2f} | 1.00 | 1.00 |")
            for k, v in r["K"].items():
                lines.append(f"| | {k}, stacked | {v['seconds']:.2f} | {v['seeds_per_s']:.2f} | {v['over_one']:.2f} | "
                             f"{v['over_sequential']:.2f} |")
        lines.append("")
        floors = [(name, r) for name, r in results["stacked"].items() if "work_floor_10" in r]
        if floors:
            lines += ["What bounds stacking: stacking removes per-step overhead, not per-sample work, so 10 stacked "
                      "copies cost at least what one copy costs stepping on a 10x larger batch (same operations, "
                      "10x the rows each). One Adam step (`kdlib.training_step_seconds`):", "",
                      "| student | step at batch 64 (ms) | step at batch 640 (ms) | floor for 10 seeds (x one seed) "
                      "| measured 10 stacked |", "|---|---|---|---|---|"]
            for name, r in floors:
                lines.append(f"| {name} | {r['step_s_64'] * 1e3:.2f} | {r['step_s_640'] * 1e3:.2f} | "
                             f"{r['work_floor_10']:.2f} | {r['K'][10]['over_one']:.2f} |")
            lines.append("")
    if results.get("goals"):
        lines += ["**Goals**", "", "| ratio | measured | goal | |", "|---|---|---|---|", *results["goals"], ""]
    if "models" in results:
        lines += [
            "**Teacher vs student** (CPU, eval mode, no grad)",
            "",
            "| model | params | MFLOPs / sample | latency @1 (ms) | latency @64 (ms) | samples/s @64 |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in results["models"].items():
            lines.append(
                f"| {name} | {r['params']:,} | {r['MFLOPs/sample']:.3f} | {r['latency_ms@1']:.3f} | "
                f"{r['latency_ms@64']:.3f} | {r['samples/s@64']:,.0f} |"
            )
        lines.append("")
    if "notebooks" in results:
        when = f", measured {results['notebooks_date']}" if "notebooks_date" in results else ""
        lines += [f"**The book's notebooks** (each re-run by nbval, as the test suite does{when})", "",
                  "| notebook | wall time (s) | CPU time (s) | peak memory (MB) | passed |", "|---|---|---|---|---|"]
        nbs = results["notebooks"]
        for name, r in nbs.items():
            cpu = f"{r['cpu_s']:.0f}" if "cpu_s" in r else "-"
            lines.append(f"| `{name}` | {r['wall_s']:.1f} | {cpu} | {r['peak_mb']:.0f} | {'yes' if r['ok'] else 'NO'} |")
        lines.append("")
        if all("cpu_s" in r for r in nbs.values()):
            cpu = sum(r["cpu_s"] for r in nbs.values())
            lines += [f"All notebooks, one after another: {sum(r['wall_s'] for r in nbs.values()) / 60:.1f} min of wall "
                      f"time, {cpu / 60:.1f} CPU-minutes (kernels, their worker processes and pytest). On "
                      f"{results['machine']['cores']} cores no scheduling of them can take less than "
                      f"{cpu / 60 / results['machine']['cores']:.1f} min: the floor of the suite's time.", ""]
    if "suite" in results:
        s = results["suite"]
        when = f" (measured {results['suite_date']})" if "suite_date" in results else ""
        lines += [f"**Whole test suite** (`make test` after set-up){when}: {s['wall_s'] / 60:.1f} min, "
                  f"peak memory {s['peak_mb']:.0f} MB, {'passed' if s['ok'] else 'FAILED'}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python benchmarks/run.py", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-batches", type=int, default=150, help="batches timed per naive-loader repeat")
    ap.add_argument("--notebooks", action="store_true", help="also time every notebook (slow)")
    ap.add_argument("--suite", action="store_true", help="also time the whole test suite (slow)")
    ap.add_argument("--only", help="comma-separated sections to run, e.g. stacked,distillation")
    ap.add_argument("--threads", type=int, help="torch threads (default: PyTorch's); 1 is steadier on a busy machine")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    results: dict = {"machine": machine(), "repeats": args.repeats}
    sections = {"pipeline": lambda: pipeline(args.repeats, args.naive_batches),
                "distillation": lambda: distillation(args.repeats),
                "stacked": lambda: stacked(args.repeats),
                "models": lambda: models(max(20, 10 * args.repeats))}
    if args.notebooks:
        sections["notebooks"] = notebooks
    if args.suite:
        sections["suite"] = suite
    if args.only:
        sections = {name: sections[name] for name in args.only.split(",")}
    previous = args.out / "results.json"
    if previous.exists():  # slow sections not re-measured: keep their last results
        old = json.loads(previous.read_text())
        for k in ("notebooks", "suite"):
            if k in old and k not in sections:
                results[k], results[f"{k}_date"] = old[k], old.get(f"{k}_date", old["machine"]["date"])
    for name, run in sections.items():
        t0 = time.perf_counter()
        results[name] = run()
        print(f"[bench] {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    results["goals"] = _goal_rows(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
