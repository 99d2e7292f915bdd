"""Train and evaluate one study run, resumably, through the library functions the CLI calls.

A run folder holds the trainer's files (last.ckpt, log.csv, config.yaml) plus `study.json` (what the
run is, how long it took, which 3D takes it saw) and one `eval-noise<L>.json` per evaluation. A run
is finished when study.json says training completed, last.ckpt is there and every evaluation file
exists; rerunning the script skips it. A run killed during training resumes from its last.ckpt.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rich.console import Console

from posecli.atomic import atomic_output
from posecli.config import apply_run_options, load_config
from posecli.errors import PoseCliError
from study.grid import PROTOCOLS, RunSpec, StudyOptions, eval_command


def run_dir(opts: StudyOptions, spec: RunSpec | str) -> Path:
    return opts.out / (spec if isinstance(spec, str) else spec.name)


def init_path(opts: StudyOptions, spec: RunSpec) -> str | None:
    """Checkpoint the run starts from: the --pretrained file for 'main', else a study run's last.ckpt."""
    if spec.init is None:
        return None
    if spec.init == "main":
        return str(opts.pretrained)
    return str(run_dir(opts, spec.init) / "last.ckpt")


def eval_file(opts: StudyOptions, spec: RunSpec, noise: float) -> Path:
    return run_dir(opts, spec) / f"eval-noise{noise:g}.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False), encoding="utf-8")


def _state(opts: StudyOptions, spec: RunSpec) -> dict[str, Any] | None:
    """The run's study.json, refusing a folder that was made for a different run (other options)."""
    state = read_json(run_dir(opts, spec) / "study.json")
    if state is not None and state.get("key") != json.loads(json.dumps(spec.key())):
        raise PoseCliError(f"run folder was made with other options ({spec.name}); use another --out "
                           "or remove that run folder", run_dir(opts, spec))
    return state


def is_trained(opts: StudyOptions, spec: RunSpec) -> bool:
    state = _state(opts, spec)
    return bool(state and state.get("trained")) and (run_dir(opts, spec) / "last.ckpt").is_file()


def is_finished(opts: StudyOptions, spec: RunSpec) -> bool:
    return is_trained(opts, spec) and all(eval_file(opts, spec, n).is_file() for n in spec.evals)


@functools.lru_cache(maxsize=4)
def _train_cache(path: str):
    from posecli.data.cache import open_cache

    return open_cache(path)


def takes_kept(spec: RunSpec) -> tuple[list[str], int]:
    """(kept take names, takes in the cache) of a fine-tuning run's data.fraction selection."""
    from posecli.data.windows import select_takes, take_keys, take_names

    cache = _train_cache(spec.data[0])
    kept = select_takes(cache, spec.info["fraction"], spec.info["seed"])
    return take_names(cache, kept), len(set(take_keys(cache)))


def _train(spec: RunSpec, opts: StudyOptions, console: Console, progress: bool) -> None:
    from posecli.engine.trainer import train

    folder = run_dir(opts, spec)
    source = init_path(opts, spec)
    state: dict[str, Any] = {"key": spec.key(), "name": spec.name, "info": spec.info, "trained": False,
                             "command": spec.command(opts.out, source)}
    if spec.kind == "finetune":
        state["takes_kept"], state["takes_total"] = takes_kept(spec)
    write_json(folder / "study.json", state)
    cfg = apply_run_options(load_config(spec.preset, spec.sets), data=list(spec.data), val=spec.val,
                            steps=spec.steps)
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(cfg, folder, resume=(folder / "last.ckpt").is_file(),
                   init_from=Path(source) if source else None, device=opts.device,
                   progress=progress and not opts.quick, console=console)
    state.update(trained=result.step >= spec.steps, step=result.step,
                 train_seconds=time.perf_counter() - wall, train_cpu_seconds=time.process_time() - cpu,
                 frames_per_s=result.frames_per_s)
    write_json(folder / "study.json", state)


def _evaluate(spec: RunSpec, opts: StudyOptions, noise: float) -> None:
    from posecli.device import select_device
    from posecli.eval.protocols import evaluate_checkpoint

    folder = run_dir(opts, spec)
    wall, cpu = time.perf_counter(), time.process_time()
    result = evaluate_checkpoint(folder / "last.ckpt", spec.val, protocols=PROTOCOLS,
                                 device=str(select_device(opts.device)), input_noise=noise)
    overall = result.report["overall"]
    write_json(eval_file(opts, spec, noise), {
        "input_noise": noise, "frames": result.report["data"]["frames"],
        **{k: overall[k]["value"] for k in PROTOCOLS}, "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu, "command": eval_command(opts.out, spec.name, spec.val, noise)})


def execute(spec: RunSpec, opts: StudyOptions, console: Console | None = None, progress: bool = True) -> bool:
    """Bring one run to finished (train or resume, then every missing evaluation); False if it
    already was."""
    console = console or Console()
    if is_finished(opts, spec):
        return False
    if spec.init is not None and spec.init != "main" and not (
            (read_json(run_dir(opts, spec.init) / "study.json") or {}).get("trained")):
        raise PoseCliError(f"run {spec.name} needs pretraining run {spec.init} to finish first",
                           run_dir(opts, spec.init))
    if not is_trained(opts, spec):
        _train(spec, opts, console, progress)
    for noise in spec.evals:
        if not eval_file(opts, spec, noise).is_file():
            _evaluate(spec, opts, noise)
    return True


def _worker_init(threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)


def _execute_quietly(spec: RunSpec, opts: StudyOptions) -> str:
    """One run in a worker process, silent: live progress bars of several processes would interleave."""
    execute(spec, opts, Console(quiet=True), progress=False)
    return spec.name


def run_all(todo: list[RunSpec], opts: StudyOptions, console: Console, workers: int, threads: int) -> None:
    """Train and evaluate `todo`: in this process, or `workers` processes at a time, pretraining
    runs first (fine-tuning runs start from them)."""
    start = time.perf_counter()
    if workers == 1:
        for i, r in enumerate(todo, 1):
            console.rule(f"[{i}/{len(todo)}] {r.name}")
            execute(r, opts, console)
            console.print(f"done {r.name} -> {run_dir(opts, r)} ({(time.perf_counter() - start) / 60:.1f} min so far)")
        return
    done = 0
    context = multiprocessing.get_context("spawn")
    for stage in ("pretrain", "finetune"):
        batch = [r for r in todo if r.kind == stage]
        if not batch:
            continue
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                                 initargs=(threads,)) as pool:
            futures = [pool.submit(_execute_quietly, r, opts) for r in batch]
            for future in as_completed(futures):
                if future.exception() is not None:     # stop at the first failure, as one process would
                    pool.shutdown(cancel_futures=True)
                    raise future.exception()
                done += 1
                name = future.result()
                console.print(f"[{done}/{len(todo)}] done {name} ({(time.perf_counter() - start) / 60:.1f} min so far)")
