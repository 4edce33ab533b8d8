"""Minimal DAMO-YOLO trainer for a COCO-style folder (made for the synthetic shapes set; a script, not part of CI).

    python -m models.synthetic --out DIR --train 4000 --val 300 --size 320 --seed 0
    python -m models.damo_yolo.train --data DIR --config Ns --imgsz 256 --minutes 45 --out damoyolo_ns_shapes.pth

Writes `{'model': EMA state dict}` (the official checkpoint layout), which `edge-convert damoyolo_ns_shapes.pth
--family damo-yolo --config Ns --imgsz 256 --names DIR/names.txt` turns into a bundle. Input is what the runtime
feeds DAMO-YOLO: RGB, 0..255, stretched to the square input size.

What it keeps from the paper: the architecture (built by `models.damo_yolo` with the data's class count), ZeroHead
with quality focal loss (classification scores trained towards the box quality), distribution focal loss on the
reg_max+1 bins per side and GIoU loss (weights 1.0 / 0.25 / 2.0), plus an EMA of the weights.
What differs: the label assigner is TAL (task-aligned top-k over anchor points inside the box whose distances fit
the bins, the best-IoU box wins a contested anchor) instead of AlignedOTA's dynamic-k optimal transport; there is
no knowledge distillation from a larger teacher; no mosaic/mixup, only scale-and-aspect jitter, horizontal flip
and HSV jitter; AdamW with linear warm-up and a cosine decay instead of SGD over 300 epochs; single process, CPU.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import time
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import DamoYolo, get_config

LOSS_WEIGHTS = {"qfl": 1.0, "dfl": 0.25, "giou": 2.0}


class CocoImages(torch.utils.data.Dataset):
    """Images and [class, x1, y1, x2, y2] rows of a COCO instances file, augmented onto size x size canvases."""

    def __init__(self, folder: str, annotations: str, size: int, seed: int = 0):
        with open(annotations, encoding="utf-8") as f:
            coco = json.load(f)
        self.folder, self.size = folder, size
        self.rng = np.random.default_rng(seed)
        category = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
        self.names = [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
        rows: dict = {im["id"]: [] for im in coco["images"]}
        for a in coco["annotations"]:
            x, y, w, h = a["bbox"]
            rows[a["image_id"]].append([category[a["category_id"]], x, y, x + w, y + h])
        self.items = [(im["file_name"], np.array(rows[im["id"]], np.float32).reshape(-1, 5)) for im in coco["images"]]

    def __len__(self) -> int:
        """Number of images."""
        return len(self.items)

    def __getitem__(self, index: int) -> tuple:
        """(3xSxS float RGB 0..255 tensor, Kx5 float tensor)."""
        name, rows = self.items[index]
        image = cv2.imread(os.path.join(self.folder, name), cv2.IMREAD_COLOR)
        image, rows = jitter(self.rng, image, rows, self.size)
        rgb = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))
        return torch.from_numpy(rgb).float(), torch.from_numpy(rows)


def jitter(rng: np.random.Generator, image: np.ndarray, rows: np.ndarray, size: int) -> tuple:
    """Random scale and aspect onto a size x size grey canvas, horizontal flip and HSV gains; boxes follow."""
    h, w = image.shape[:2]
    scale, aspect = rng.uniform(0.6, 1.3), math.exp(rng.uniform(-0.3, 0.3))
    nw, nh = max(8, round(size * scale * aspect)), max(8, round(size * scale / aspect))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    ox, oy = (int(rng.uniform(min(0, size - n), max(0, size - n) + 1)) for n in (nw, nh))
    canvas = np.full((size, size, 3), 114, np.uint8)
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + nw, size), min(oy + nh, size)
    canvas[y0:y1, x0:x1] = resized[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    boxes = rows[:, 1:] * (nw / w, nh / h, nw / w, nh / h) + (ox, oy, ox, oy)
    clipped = boxes.clip(0, size)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (kept_area >= 0.6 * area) & (clipped[:, 2] - clipped[:, 0] >= 3) & (clipped[:, 3] - clipped[:, 1] >= 3)
    rows = np.concatenate([rows[:, :1], clipped], 1)[keep]
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1]
        rows[:, [1, 3]] = size - rows[:, [3, 1]]
    hsv = cv2.cvtColor(np.ascontiguousarray(canvas), cv2.COLOR_BGR2HSV)
    gains = rng.uniform(-1, 1, 3) * (0.015, 0.7, 0.4) + 1
    lut = np.arange(256, dtype=np.float32)
    tables = [((lut * gains[0]) % 180), np.clip(lut * gains[1], 0, 255), np.clip(lut * gains[2], 0, 255)]
    hsv = cv2.merge([cv2.LUT(c, t.astype(np.uint8)) for c, t in zip(cv2.split(hsv), tables)])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), rows


def collate(batch: list) -> tuple:
    """Stack images; pad box rows to the batch maximum with class -1."""
    images = torch.stack([b[0] for b in batch])
    most = max(1, max(len(b[1]) for b in batch))
    targets = torch.full((len(batch), most, 5), -1.0)
    for i, (_, rows) in enumerate(batch):
        targets[i, :len(rows)] = rows
    return images, targets


def head_outputs(model: DamoYolo, images: torch.Tensor) -> tuple:
    """Class logits [B,N,C], bin logits [B,N,4,R+1], anchor points [N,2] (cell corners) and strides [N,1]."""
    head = model.head
    feats = model.neck(model.backbone(images))
    logits, bins, points, strides = [], [], [], []
    for i, (f, stride) in enumerate(zip(feats, head.strides)):
        b, _, h, w = f.shape
        logits.append(head.gfl_cls[i](f).flatten(2).transpose(1, 2))
        reg = head.scales[i](head.gfl_reg[i](f)).reshape(b, 4, head.reg_max + 1, h * w)
        bins.append(reg.permute(0, 3, 1, 2))
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        points.append(torch.stack([xs, ys], -1).reshape(-1, 2).float() * stride)
        strides.append(torch.full((h * w, 1), float(stride)))
    return torch.cat(logits, 1), torch.cat(bins, 1), torch.cat(points), torch.cat(strides)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes [..., M, 4] x [..., N, 4] -> [..., M, N]."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter + 1e-7)


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of matching xyxy rows."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = (a[:, 2:] - a[:, :2]).prod(-1) + (b[:, 2:] - b[:, :2]).prod(-1) - inter + 1e-7
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(-1) + 1e-7
    return inter / union - (hull - union) / hull


@torch.no_grad()
def assign(scores: torch.Tensor, boxes: torch.Tensor, points: torch.Tensor, strides: torch.Tensor,
           targets: torch.Tensor, reg_max: int, topk: int = 10, alpha: float = 1.0, beta: float = 6.0) -> tuple:
    """TAL: per box the top-k anchors by score^alpha * IoU^beta -> (fg mask [B,N], box per anchor [B,N,4], soft
    class targets [B,N,C])."""
    gt_cls, gt_box = targets[..., 0].long(), targets[..., 1:]
    valid = gt_cls >= 0  # [B,M]
    lt = points[None, None] - gt_box[:, :, None, :2]  # [B,M,N,2]
    rb = gt_box[:, :, None, 2:] - points[None, None]
    dist = torch.cat([lt, rb], -1)
    fits = (dist.min(-1).values > 0.01) & (dist.max(-1).values <= reg_max * strides[None, None, :, 0])
    candidates = fits & valid[..., None]
    iou = pairwise_iou(gt_box, boxes)  # [B,M,N]
    cls_score = scores.gather(2, gt_cls.clamp(min=0)[:, None, :].expand(-1, scores.shape[1], -1)).transpose(1, 2)
    align = cls_score.pow(alpha) * iou.pow(beta) * candidates
    top = align.topk(min(topk, align.shape[-1]), -1).indices
    chosen = torch.zeros_like(align, dtype=torch.bool).scatter_(-1, top, True) & candidates
    best = torch.where(chosen, iou, torch.full_like(iou, -1)).argmax(1)  # [B,N]: the best-IoU box wins
    fg = chosen.any(1)
    chosen = chosen & (torch.arange(chosen.shape[1])[None, :, None] == best[:, None, :])
    align, iou = align * chosen, iou * chosen
    norm = align * (iou.amax(-1, keepdim=True) / (align.amax(-1, keepdim=True) + 1e-9))
    quality = norm.amax(1) * fg  # [B,N]
    box = gt_box.gather(1, best[..., None].expand(-1, -1, 4))
    cls = gt_cls.gather(1, best)
    soft = torch.zeros_like(scores)
    soft.scatter_(2, cls.clamp(min=0)[..., None], quality[..., None])
    return fg, box, soft


def losses(model: DamoYolo, images: torch.Tensor, targets: torch.Tensor) -> dict:
    """QFL, DFL and GIoU for one batch, each normalised by the sum of the soft targets."""
    logits, bins, points, strides = head_outputs(model, images)
    reg_max = model.head.reg_max
    probs = bins.softmax(-1)
    dist = (probs @ model.head.integral.project) * strides[None]
    boxes = torch.cat([points[None] - dist[..., :2], points[None] + dist[..., 2:]], -1)
    fg, gt_box, soft = assign(logits.detach().sigmoid(), boxes.detach(), points, strides, targets, reg_max)
    norm = soft.sum().clamp(min=1.0)
    sigma = logits.sigmoid()
    qfl = (F.binary_cross_entropy_with_logits(logits, soft, reduction="none") * (sigma - soft).abs().pow(2)).sum()
    weight = soft.amax(-1)[fg]
    pts, st = points[None].expand_as(gt_box[..., :2])[fg], strides[None].expand(fg.shape[0], -1, -1)[fg]
    box_target = gt_box[fg]
    g = ((1 - giou(boxes[fg], box_target)) * weight).sum()
    want = (torch.cat([pts - box_target[:, :2], box_target[:, 2:] - pts], -1) / st).clamp(0, reg_max - 0.01)
    left = want.floor().long()
    log_p = bins[fg].log_softmax(-1)
    dfl = -(log_p.gather(-1, left[..., None])[..., 0] * (left + 1 - want)
            + log_p.gather(-1, (left + 1)[..., None])[..., 0] * (want - left))
    return {"qfl": qfl / norm, "dfl": (dfl.mean(-1) * weight).sum() / norm, "giou": g / norm}


class EMA:
    """Exponential moving average of a model's weights (decay ramps up over `tau` updates); BN buffers copied."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.995, tau: float = 100.0):
        self.model, self.decay, self.tau, self.updates = copy.deepcopy(model).eval(), decay, tau, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Blend the current weights in."""
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        for ema_v, v in zip(self.model.state_dict().values(), model.state_dict().values()):
            if ema_v.dtype.is_floating_point:
                ema_v.mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                ema_v.copy_(v)


def build(config: str, num_classes: int) -> DamoYolo:
    """DAMO-YOLO `config` with `num_classes` outputs; class biases start at a 0.01 prior."""
    model = DamoYolo(dataclasses.replace(get_config(config), num_classes=num_classes))
    for conv in model.head.gfl_cls:
        torch.nn.init.constant_(conv.bias, -math.log(99))
    return model


def train(data: str, out: str, config: str = "Ns", imgsz: int = 256, epochs: float = 4.0, batch: int = 16,
          lr: float = 2e-3, seed: int = 0, threads: int = 1, max_iters: Optional[int] = None,
          minutes: Optional[float] = None) -> str:
    """Train on data/train + data/train.json; save `{'model': EMA weights}` at `out` after each epoch and at the end.

    `minutes` runs the cosine schedule over wall-clock time instead of iterations (robust to a shared CPU).
    """
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    dataset = CocoImages(os.path.join(data, "train"), os.path.join(data, "train.json"), imgsz, seed=seed)
    loader = torch.utils.data.DataLoader(dataset, batch, shuffle=True, collate_fn=collate, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    model = build(config, len(dataset.names)).train().to(memory_format=torch.channels_last)  # ~1.6x faster on CPU
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=lr)
    total = max_iters or max(1, int(epochs * len(loader)))
    warmup = min(50, total)
    ema = EMA(model)  # decay 0.995, a ~200-iteration window: runs here are 1000-2000 iterations
    start, step, progress = time.monotonic(), 0, 0.0
    while progress < 1.0:
        for images, targets in loader:
            factor = (step + 1) / warmup if step < warmup else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
            parts = losses(model, images.contiguous(memory_format=torch.channels_last), targets)
            loss = sum(LOSS_WEIGHTS[k] * v for k, v in parts.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            ema.update(model)
            step += 1
            progress = (time.monotonic() - start) / (60 * minutes) if minutes else step / total
            if step % 20 == 0 or progress >= 1.0:
                print(f"iter {step} ({progress:.1%})  loss {loss.item():.3f}  " + "  ".join(
                      f"{k} {v.item():.3f}" for k, v in parts.items()) + f"  lr {lr * factor:.2e}  "
                      f"{time.monotonic() - start:.0f}s", flush=True)
            if progress >= 1.0:
                break
        torch.save({"model": ema.model.state_dict()}, out)
    print(f"saved {out} after {step} iterations in {time.monotonic() - start:.0f}s", flush=True)
    return out


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(prog="python -m models.damo_yolo.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder with train/ and train.json (python -m models.synthetic)")
    p.add_argument("--out", default="damoyolo_synthetic.pth", help="checkpoint to write")
    p.add_argument("--config", default="Ns")
    p.add_argument("--imgsz", type=int, default=256)
    p.add_argument("--epochs", type=float, default=4.0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core CPU, 2 OpenMP threads spin-wait and measured "
                        "1.7-12 s per iteration against a steady 2.4 s for one)")
    p.add_argument("--max-iters", type=int, help="stop after N iterations (overrides --epochs)")
    p.add_argument("--minutes", type=float, help="schedule over this wall-clock budget (overrides --epochs)")
    args = p.parse_args()
    train(args.data, args.out, args.config, args.imgsz, args.epochs, args.batch, args.lr, args.seed, args.threads,
          args.max_iters, args.minutes)


if __name__ == "__main__":
    main()
