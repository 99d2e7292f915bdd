"""The one training loop: pretraining and fine-tuning differ only in data and objective (the preset).

Resume is exact: a checkpoint stores model, optimizer, scheduler, AMP scaler, step, the RNG states
(python, numpy, torch) and the data position (micro-batches consumed; a sample is a pure function
of its index, posecli.data.windows), so a run killed after k steps and resumed ends with the same
weights as an uninterrupted one on the same device and seed. DataLoader iterators are created under
a forked RNG so that starting one (each epoch, or on resume) never consumes the global torch RNG.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from rich.console import Console
from torch import nn

from posecli.config import dump_config, section
from posecli.data.cache import open_cache
from posecli.device import select_device
from posecli.engine import distributed
from posecli.engine.checkpoint import (
    InitReport,
    load_checkpoint,
    load_matching,
    save_checkpoint,
)
from posecli.engine.runlog import RunLog, progress_bar, summary_table
from posecli.engine.schedule import build_lr_scheduler
from posecli.engine.validate import is_better, validate
from posecli.errors import PoseCliError
from posecli.output_path import check_output_folder


@dataclass
class TrainResult:
    run_dir: Path
    step: int                               # optimizer steps done in total
    last_checkpoint: Path
    best_checkpoint: Path | None            # None when there is no validation cache
    final_loss: float                       # mean loss of the last logged interval
    val_metric: str | None = None           # val_mpjpe_mm or val_error2d_px
    best_val: float | None = None
    frames_per_s: float = 0.0               # training throughput of this invocation
    init_report: InitReport | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def amp_settings(device: torch.device, enabled: bool) -> tuple[bool, torch.dtype]:
    """bf16 autocast on GPUs that support it, else fp16 (with a GradScaler); off on CPU/MPS."""
    if not enabled or device.type != "cuda":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """RNG states as plain tensors/lists (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases, norm gains and position tables (the usual practice)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith("_pos") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def batches(loader: torch.utils.data.DataLoader, consumed: int) -> Iterator[dict[str, torch.Tensor]]:
    """Endless micro-batches starting after `consumed` of them (epochs follow one another)."""
    sampler = loader.batch_sampler
    per_epoch = len(sampler)
    sampler.set_epoch(consumed // per_epoch, consumed % per_epoch)
    while True:
        with torch.random.fork_rng(devices=[]):
            iterator = iter(loader)
        yield from iterator


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _resolve_init(cfg: dict[str, Any], init_from: Path | None) -> str | None:
    source = str(init_from) if init_from is not None else cfg["train"]["init_from"]
    if source is not None and not str(source).strip():
        return None
    return source


def train(cfg: dict[str, Any], run_dir: Path, *, resume: bool = False, init_from: Path | None = None,
          device: str = "auto", stop_after: int | None = None, progress: bool = True,
          console: Console | None = None) -> TrainResult:
    """Train the preset `cfg` into `run_dir` (last.ckpt, best.ckpt, log.csv, config.yaml).

    `init_from` (or train.init_from) initialises matching tensors from a checkpoint, ignored on
    resume. `stop_after` ends this invocation after that many total steps (with a checkpoint) while
    the schedule still spans train.steps, which is how a killed run is reproduced. A run that fails
    before its first checkpoint removes the run folder it created (nothing to resume from).
    """
    run_dir = check_output_folder(run_dir)
    created = not run_dir.exists()
    try:
        return _train(cfg, run_dir, resume=resume, init_from=init_from, device=device, stop_after=stop_after,
                      progress=progress, console=console)
    except BaseException:
        if created and run_dir.is_dir() and not any(run_dir.glob("*.ckpt")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg: dict[str, Any], run_dir: Path, *, resume: bool, init_from: Path | None, device: str,
           stop_after: int | None, progress: bool, console: Console | None) -> TrainResult:
    tc = cfg["train"]
    console = console or Console()
    dev = select_device(device)
    info = distributed.setup(dev)
    dev = distributed.rank_device(dev, info)
    main = info.is_main
    last_path, best_path = run_dir / "last.ckpt", run_dir / "best.ckpt"

    ckpt = None
    if resume:
        if not last_path.is_file():
            raise PoseCliError("nothing to resume: no last.ckpt in the run folder", run_dir)
        ckpt = load_checkpoint(last_path)
        if section(ckpt["config"], "model") != section(cfg, "model"):
            raise PoseCliError("cannot resume: the run was trained with a different model: section", last_path)
    elif last_path.exists():
        raise PoseCliError("run folder already has last.ckpt: pass --resume to continue it, "
                           "or choose another --run-dir", run_dir)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)

    from posecli.data.image_windows import build_image_dataloader
    from posecli.data.windows import build_dataloader
    from posecli.engine.image_objectives import build_image_objective
    from posecli.engine.objectives import build_objective, check_objective_data
    from posecli.models import build_model

    seed_everything(int(tc["seed"]))
    model = build_model(section(cfg, "model")).to(dev)
    init_report = None
    source = _resolve_init(cfg, init_from)
    if ckpt is None and source is not None:
        if not Path(source).exists() and Path(source).suffix:
            raise PoseCliError("checkpoint to fine-tune from not found (run `posecli pretrain` first, "
                               "or pass --from CKPT)", source)
        init_report = load_matching(model, source)
        cfg = {**cfg, "train": {**tc, "init_from": str(source)}}
    image = getattr(model, "family", "lifter") == "image"
    objective = build_image_objective(cfg["objective"]) if image else build_objective(cfg["objective"])
    optimizer = torch.optim.AdamW(param_groups(model, float(tc["weight_decay"])), lr=float(tc["lr"]),
                                  betas=tuple(tc["betas"]))
    total = int(tc["steps"])
    scheduler = build_lr_scheduler(optimizer, tc)
    use_amp, amp_dtype = amp_settings(dev, bool(tc["amp"]))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    data_cfg = section(cfg, "data")
    window = 1 if image else int(data_cfg.get("window", model.window))
    accumulate = max(1, int(tc["accumulate"]))
    if image:
        loader = build_image_dataloader(data_cfg, int(model.input_size), int(tc["batch_size"]), int(tc["seed"]),
                                        rank=info.rank, world_size=info.world_size,
                                        num_workers=int(data_cfg.get("num_workers", 0)))
    else:
        loader = build_dataloader(data_cfg, int(model.window), int(tc["batch_size"]), int(tc["seed"]),
                                  rank=info.rank, world_size=info.world_size,
                                  num_workers=int(data_cfg.get("num_workers", 0)))
    if not image:
        dataset = loader.dataset
        check_objective_data(cfg["objective"], [c.has3d and w > 0 for c, w in zip(dataset.caches, dataset.weights)])
    val_cache = open_cache(data_cfg["val"]) if data_cfg.get("val") and main else None

    step, consumed, best_val, metric_name = 0, 0, math.inf, None
    if ckpt is not None:
        state = ckpt["state"]
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, consumed = int(state["step"]), int(state["consumed"])
        best_val, metric_name = float(state["best_val"]), state.get("val_metric")
    ddp_model = distributed.wrap(model, info, dev)
    train_model = torch.compile(ddp_model) if tc["compile"] else ddp_model
    stream = batches(loader, consumed)
    if ckpt is not None:
        set_rng_state(ckpt["state"]["rng"])
    else:
        torch.manual_seed(int(tc["seed"]) + info.rank)  # distinct dropout/masking per rank

    if main:
        (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
        if init_report is not None:
            console.print(init_report.summary())
            for label, names in (("new", init_report.new), ("skipped (shape mismatch)", init_report.skipped)):
                if names:
                    console.print(f"  {label}: {', '.join(names)}")
    log = RunLog(run_dir, enabled=main, resume_step=step if ckpt is not None else None,
                 tensorboard=bool(tc["tensorboard"]))

    def state_dict() -> dict[str, Any]:
        return {"step": step, "consumed": consumed, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state(),
                "best_val": best_val, "val_metric": metric_name, "world_size": info.world_size}

    frames_per_step = int(tc["batch_size"]) * info.world_size * accumulate * window
    end = total if stop_after is None else min(total, int(stop_after))
    start_step, t_start = step, time.perf_counter()
    interval: list[dict[str, float]] = []
    t_interval, last_loss, last_fps = time.perf_counter(), math.nan, 0.0
    autocast = (lambda: torch.autocast(dev.type, dtype=amp_dtype)) if use_amp else contextlib.nullcontext
    train_model.train()
    with progress_bar(console, main and progress) as bar:
        task = bar.add_task("train", total=total, completed=step, loss=math.nan, lr=scheduler.get_last_lr()[0],
                            fps=0.0)
        while step < end:
            optimizer.zero_grad(set_to_none=True)
            step_logs: dict[str, float] = {}
            for micro in range(accumulate):
                batch = _to(next(stream), dev)
                consumed += 1
                sync = micro == accumulate - 1 or not info.enabled
                with contextlib.nullcontext() if sync else ddp_model.no_sync():
                    with autocast():
                        loss, logs = objective(train_model, batch)
                    scaler.scale(loss / accumulate).backward()
                for k, v in logs.items():
                    step_logs[k] = step_logs.get(k, 0.0) + v / accumulate
            if not math.isfinite(step_logs.get("loss", 0.0)):
                raise PoseCliError(f"loss is not finite at step {step + 1}: lower train.lr or check the data",
                                   run_dir)
            if float(tc["grad_clip"]) > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(tc["grad_clip"]))
            scaler.step(optimizer)
            scaler.update()
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            step += 1
            interval.append(step_logs)

            row: dict[str, Any] | None = None
            if step % int(tc["log_every"]) == 0 or step == end:
                keys = sorted({k for logs in interval for k in logs})
                means = distributed.mean_across([float(np.mean([l.get(k, 0.0) for l in interval]))
                                                 for k in keys], info, dev)
                now = time.perf_counter()
                last_fps = frames_per_step * len(interval) / max(now - t_interval, 1e-9)
                t_interval, interval = now, []
                row = {"step": step, "epoch": consumed // len(loader.batch_sampler),
                       "lr": lr, "frames_per_s": round(last_fps, 1), **dict(zip(keys, means))}
                last_loss = row.get("loss", math.nan)
                bar.update(task, completed=step, loss=last_loss, lr=lr, fps=last_fps)
            else:
                bar.update(task, completed=step)

            if val_cache is not None and (step % int(tc["val_every"]) == 0 or step == total):
                with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
                    metric_name, value = validate(model, val_cache, window=window,
                                                  max_sequences=int(data_cfg.get("val_sequences", 0)),
                                                  device=dev)
                row = {**(row or {"step": step, "epoch": consumed // len(loader.batch_sampler)}),
                       metric_name: round(value, 3)}
                if is_better(metric_name, value, best_val):
                    best_val = value
                    save_checkpoint(best_path, model, cfg, state_dict())
            if row is not None:
                log.write(row)
            if main and (step % int(tc["ckpt_every"]) == 0 or step == end):
                save_checkpoint(last_path, model, cfg, state_dict())
    distributed.barrier(info)
    log.close()
    elapsed = time.perf_counter() - t_start
    fps = frames_per_step * (step - start_step) / max(elapsed, 1e-9)
    result = TrainResult(
        run_dir=run_dir, step=step, last_checkpoint=last_path,
        best_checkpoint=best_path if best_path.is_file() else None, final_loss=float(last_loss),
        val_metric=metric_name, best_val=None if math.isinf(best_val) else best_val, frames_per_s=fps,
        init_report=init_report, history=list(log.rows))
    if main:
        facts = {"steps": f"{step} / {total}", "final loss": result.final_loss,
                 "global batch": int(tc["batch_size"]) * info.world_size * accumulate,
                 "frames/s": fps, "time (s)": elapsed, "device": f"{dev} x {info.world_size}"}
        if result.best_val is not None:
            facts[f"best {metric_name}"] = result.best_val
        facts["checkpoint"] = str(last_path)
        console.print(summary_table(facts))
    if val_cache is not None:
        val_cache.close()
    distributed.cleanup(info)
    return result
