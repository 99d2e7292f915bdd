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
from posecli.data.cache import PoseCache, open_cache
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
from posecli.families import family_of_model
from posecli.families.base import Family, Objective
from posecli.models import complete_model_section
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


@dataclass
class _Run:
    """Everything one training invocation holds, built in a fixed order (the RNG draws of model
    initialisation, data and resume must not move, or resume would stop being exact)."""

    cfg: dict[str, Any]
    run_dir: Path
    family: Family
    info: distributed.DistInfo
    dev: torch.device
    model: nn.Module
    objective: Objective
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None           # None: autocast off
    loader: torch.utils.data.DataLoader
    val_cache: PoseCache | None
    init_report: InitReport | None
    step: int = 0
    consumed: int = 0                       # micro-batches drawn so far (the data position)
    best_val: float = math.inf
    metric_name: str | None = None

    @property
    def tc(self) -> dict[str, Any]:
        return self.cfg["train"]

    def epoch(self) -> int:
        return self.consumed // len(self.loader.batch_sampler)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.dev.type, dtype=self.amp_dtype)

    def state(self) -> dict[str, Any]:
        """The training state a checkpoint stores beside the weights."""
        return {"step": self.step, "consumed": self.consumed, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                "best_val": self.best_val, "val_metric": self.metric_name, "world_size": self.info.world_size}

    def restore(self, ckpt: dict[str, Any]) -> None:
        state = ckpt["state"]
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.consumed = int(state["step"]), int(state["consumed"])
        self.best_val, self.metric_name = float(state["best_val"]), state.get("val_metric")


def _resume_from(cfg: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint a --resume continues (same model: section), else None; a run folder that
    already has one is not overwritten silently."""
    last_path = run_dir / "last.ckpt"
    if not resume:
        if last_path.exists():
            raise PoseCliError("run folder already has last.ckpt: pass --resume to continue it, "
                               "or choose another --run-dir", run_dir)
        return None
    if not last_path.is_file():
        raise PoseCliError("nothing to resume: no last.ckpt in the run folder", run_dir)
    ckpt = load_checkpoint(last_path)
    if complete_model_section(section(ckpt["config"], "model")) != complete_model_section(section(cfg, "model")):
        raise PoseCliError("cannot resume: the run was trained with a different model: section", last_path)
    return ckpt


def _initialised_model(family: Family, cfg: dict[str, Any], dev: torch.device, init_from: Path | None,
                       resuming: bool) -> tuple[nn.Module, dict[str, Any], InitReport | None]:
    """The fresh model, its matching tensors copied from train.init_from / --from (not on
    resume); the config then names the source it was initialised from."""
    model = family.build_model(section(cfg, "model")).to(dev)
    source = _resolve_init(cfg, init_from)
    if resuming or source is None:
        return model, cfg, None
    if not Path(source).exists() and Path(source).suffix:
        raise PoseCliError("checkpoint to fine-tune from not found (run `posecli pretrain` first, "
                           "or pass --from CKPT)", source)
    report = load_matching(model, source)
    return model, {**cfg, "train": {**cfg["train"], "init_from": str(source)}}, report


def _build_run(cfg: dict[str, Any], run_dir: Path, ckpt: dict[str, Any] | None, init_from: Path | None,
               dev: torch.device, info: distributed.DistInfo) -> _Run:
    """Model, objective, optimiser, schedule, AMP, data and validation cache, then the resumed state."""
    tc = cfg["train"]
    family = family_of_model(cfg["model"]["name"])
    seed_everything(int(tc["seed"]))
    model, cfg, init_report = _initialised_model(family, cfg, dev, init_from, ckpt is not None)
    objective = family.build_objective(cfg["objective"])
    optimizer = torch.optim.AdamW(param_groups(model, float(tc["weight_decay"])), lr=float(tc["lr"]),
                                  betas=tuple(tc["betas"]))
    scheduler = build_lr_scheduler(optimizer, tc)
    use_amp, amp_dtype = amp_settings(dev, bool(tc["amp"]))
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    data_cfg = section(cfg, "data")
    loader = family.build_loader(data_cfg, model, int(tc["batch_size"]), int(tc["seed"]), rank=info.rank,
                                 world_size=info.world_size, num_workers=int(data_cfg.get("num_workers", 0)))
    family.check_training_data(cfg["objective"], loader)
    val_cache = open_cache(data_cfg["val"]) if data_cfg.get("val") and info.is_main else None
    run = _Run(cfg, run_dir, family, info, dev, model, objective, optimizer, scheduler, scaler,
               amp_dtype if use_amp else None, loader, val_cache, init_report)
    if ckpt is not None:
        run.restore(ckpt)
    return run


def _announce(run: _Run, console: Console) -> None:
    """config.yaml into the run folder, and what fine-tuning initialisation did."""
    (run.run_dir / "config.yaml").write_text(dump_config(run.cfg), encoding="utf-8")
    report = run.init_report
    if report is not None:
        console.print(report.summary())
        for label, names in (("new", report.new), ("skipped (shape mismatch)", report.skipped)):
            if names:
                console.print(f"  {label}: {', '.join(names)}")


def _optimizer_step(run: _Run, train_model: nn.Module, ddp_model: nn.Module,
                    stream: Iterator[dict[str, torch.Tensor]]) -> tuple[float, dict[str, float]]:
    """One optimiser step over train.accumulate micro-batches; (learning rate used, mean logs)."""
    accumulate = max(1, int(run.tc["accumulate"]))
    run.optimizer.zero_grad(set_to_none=True)
    step_logs: dict[str, float] = {}
    for micro in range(accumulate):
        batch = _to(next(stream), run.dev)
        run.consumed += 1
        sync = micro == accumulate - 1 or not run.info.enabled
        with contextlib.nullcontext() if sync else ddp_model.no_sync():
            with run.autocast():
                loss, logs = run.objective(train_model, batch)
            run.scaler.scale(loss / accumulate).backward()
        for k, v in logs.items():
            step_logs[k] = step_logs.get(k, 0.0) + v / accumulate
    if not math.isfinite(step_logs.get("loss", 0.0)):
        raise PoseCliError(f"loss is not finite at step {run.step + 1}: lower train.lr or check the data",
                           run.run_dir)
    if float(run.tc["grad_clip"]) > 0:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), float(run.tc["grad_clip"]))
    run.scaler.step(run.optimizer)
    run.scaler.update()
    lr = run.scheduler.get_last_lr()[0]
    run.scheduler.step()
    run.step += 1
    return lr, step_logs


def _interval_row(run: _Run, interval: list[dict[str, float]], lr: float, fps: float) -> dict[str, Any]:
    """The log row of a logging interval: each logged term's mean over its steps (and ranks)."""
    keys = sorted({k for logs in interval for k in logs})
    means = distributed.mean_across([float(np.mean([l.get(k, 0.0) for l in interval])) for k in keys],
                                    run.info, run.dev)
    return {"step": run.step, "epoch": run.epoch(), "lr": lr, "frames_per_s": round(fps, 1),
            **dict(zip(keys, means))}


def _validate_and_keep_best(run: _Run, row: dict[str, Any] | None) -> dict[str, Any]:
    """Validate (under a forked RNG, so validation never shifts training's draws), add the figure
    to the row, and write best.ckpt when it improved."""
    with torch.random.fork_rng(devices=[run.dev] if run.dev.type == "cuda" else []):
        run.metric_name, value = validate(run.family, run.model, run.val_cache,
                                          max_sequences=int(run.cfg["data"].get("val_sequences") or 0),
                                          device=run.dev)
    row = {**(row or {"step": run.step, "epoch": run.epoch()}), run.metric_name: round(value, 3)}
    if is_better(run.family, run.metric_name, value, run.best_val):
        run.best_val = value
        save_checkpoint(run.run_dir / "best.ckpt", run.model, run.cfg, run.state())
    return row


def _loop(run: _Run, end: int, frames_per_step: int, log: RunLog, console: Console, progress: bool) -> float:
    """Optimiser steps up to `end` with logging, validation and checkpoints; the last logged loss."""
    tc, total = run.tc, int(run.tc["steps"])
    ddp_model = distributed.wrap(run.model, run.info, run.dev)
    train_model = torch.compile(ddp_model) if tc["compile"] else ddp_model
    stream = batches(run.loader, run.consumed)
    interval: list[dict[str, float]] = []
    t_interval, last_loss = time.perf_counter(), math.nan
    train_model.train()
    with progress_bar(console, run.info.is_main and progress) as bar:
        task = bar.add_task("train", total=total, completed=run.step, loss=math.nan,
                            lr=run.scheduler.get_last_lr()[0], fps=0.0)
        while run.step < end:
            lr, step_logs = _optimizer_step(run, train_model, ddp_model, stream)
            interval.append(step_logs)
            row: dict[str, Any] | None = None
            if run.step % int(tc["log_every"]) == 0 or run.step == end:
                now = time.perf_counter()
                fps = frames_per_step * len(interval) / max(now - t_interval, 1e-9)
                row, t_interval, interval = _interval_row(run, interval, lr, fps), now, []
                last_loss = row.get("loss", math.nan)
                bar.update(task, completed=run.step, loss=last_loss, lr=lr, fps=fps)
            else:
                bar.update(task, completed=run.step)
            if run.val_cache is not None and (run.step % int(tc["val_every"]) == 0 or run.step == total):
                row = _validate_and_keep_best(run, row)
            if row is not None:
                log.write(row)
            if run.info.is_main and (run.step % int(tc["ckpt_every"]) == 0 or run.step == end):
                save_checkpoint(run.run_dir / "last.ckpt", run.model, run.cfg, run.state())
    return float(last_loss)


def _summary(run: _Run, result: TrainResult, elapsed: float, global_batch: int, console: Console) -> None:
    facts = {"steps": f"{run.step} / {int(run.tc['steps'])}", "final loss": result.final_loss,
             "global batch": global_batch, "frames/s": result.frames_per_s, "time (s)": elapsed,
             "device": f"{run.dev} x {run.info.world_size}"}
    if result.best_val is not None:
        facts[f"best {run.metric_name}"] = result.best_val
    facts["checkpoint"] = str(result.last_checkpoint)
    console.print(summary_table(facts))


def _train(cfg: dict[str, Any], run_dir: Path, *, resume: bool, init_from: Path | None, device: str,
           stop_after: int | None, progress: bool, console: Console | None) -> TrainResult:
    console = console or Console()
    dev = select_device(device)
    info = distributed.setup(dev)
    dev = distributed.rank_device(dev, info)
    ckpt = _resume_from(cfg, run_dir, resume)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    run = _build_run(cfg, run_dir, ckpt, init_from, dev, info)
    if ckpt is not None:
        set_rng_state(ckpt["state"]["rng"])
    else:
        torch.manual_seed(int(run.tc["seed"]) + info.rank)  # distinct dropout/masking per rank
    if info.is_main:
        _announce(run, console)
    log = RunLog(run_dir, enabled=info.is_main, resume_step=run.step if ckpt is not None else None,
                 tensorboard=bool(run.tc["tensorboard"]))
    global_batch = int(run.tc["batch_size"]) * info.world_size * max(1, int(run.tc["accumulate"]))
    frames_per_step = global_batch * run.family.sample_frames(run.model, section(run.cfg, "data"))
    end = int(run.tc["steps"]) if stop_after is None else min(int(run.tc["steps"]), int(stop_after))
    start_step, t_start = run.step, time.perf_counter()
    final_loss = _loop(run, end, frames_per_step, log, console, progress)
    distributed.barrier(info)
    log.close()
    elapsed = time.perf_counter() - t_start
    best_path = run_dir / "best.ckpt"
    result = TrainResult(
        run_dir=run_dir, step=run.step, last_checkpoint=run_dir / "last.ckpt",
        best_checkpoint=best_path if best_path.is_file() else None, final_loss=final_loss,
        val_metric=run.metric_name, best_val=None if math.isinf(run.best_val) else run.best_val,
        frames_per_s=frames_per_step * (run.step - start_step) / max(elapsed, 1e-9),
        init_report=run.init_report, history=list(log.rows))
    if info.is_main:
        _summary(run, result, elapsed, global_batch, console)
    if run.val_cache is not None:
        run.val_cache.close()
    distributed.cleanup(info)
    return result
