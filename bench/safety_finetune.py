"""Does a LoRA fine-tuned sentence encoder make a better learned risk reader than the MLP over frozen vectors?

    nice -n 10 python bench/safety_finetune.py            # ~16 min on one shared CPU core (9 of them the
                                                          # fine-tune); writes bench/results/safety_finetune.json
    nice -n 10 python bench/safety_finetune.py --reuse    # the same figures from the reader saved in /tmp

Validation-only experiment (nothing here ships). Hypothesis: a reader that fine-tunes all-MiniLM-L6-v2 (LoRA
rank 8 on query/value of all 6 layers, mean pooling + L2 norm as the frozen encoder, the same 384-256-4
cumulative sigmoid heads as `safety.learned`, binary cross-entropy on the cumulative targets) separates risk
statements from their benign look-alikes better than the MLP over frozen vectors, so its thresholds can be
looser under the same zero-false-alarm limits and it finds more of the new phrasing.

Data: exactly what `safety.learned.build_learned` trains on (reused, not copied: `collect`, `_training_set`
with its multiple-instance picks, `gates`, `Scorer`, `choose_thresholds`), with the tuning splits fixed to
dev, dev2, dev3 (learned.TUNE_SPLITS is patched for this run, whatever it says). dev4 (400 items, written blind)
is the validation split: nothing is trained or chosen on it, and only aggregate figures of it are printed.
The held-out splits (test, challenge*) are only embedded inside `collect` to drop near-duplicate training
sentences, as the shipped build does; no item or per-item result of theirs is read here.

Protocol (five fine-tunes are too slow on one CPU core): a fixed GROUPED 20% hold-out of the dev..dev3 items
(fold 0 of learned._folds(items, 5, seed 0)). The fine-tuned reader is trained once on the other 80%; its
thresholds are chosen on the 20% hold-out items (+ GoEmotions dev comments, never trained on) with
`choose_thresholds` under the shipped limits (0 benign hold-out items raised, 0 GoEmotions dev comments raised),
the run-time gates (`semantic.learned_gate`) applied to every unit exactly as `learned.gates` +
`TrainingData.probs` do, from the prototype bank's match of the FROZEN encoder's vectors (the bank stays on
frozen vectors; only the reader's vectors are fine-tuned). Multiple-instance picks: the frozen MLP's first pass
(`_fit` on the unambiguous units of the 80%) picks each multi-sentence risk item's unit, as in
`fit_model`. The head starts from the frozen MLP fitted on the same 80% (the LoRA B matrices start at zero, so
step 0 IS the frozen MLP reader); then LoRA and head are trained jointly. The everyday negatives are all the GoEmotions
train units of `collect` (--everyday N: a fixed random subsample, total weight kept, for a faster run).

Arms, end to end on dev4 through `assess` (same run): rules + classifier; + prototype bank (learned off);
+ the frozen MLP reader as shipped (`build_learned`, 5-fold CV on dev..dev3); + the frozen MLP reader under this
80/20 protocol (control: separates the protocol from the encoder); + the fine-tuned reader. The fine-tuned
reader is plugged into the unmodified `semantic.semantic_cues` through `get_learned` and an encoder wrapper
that returns the frozen vectors (for the bank and the gates) and remembers which text each vector came from,
so the reader embeds that text with the fine-tuned encoder.

PRE-REGISTERED DECISION RULE (written before the first run): the fine-tuned reader is worth shipping only if on
dev4 its end-to-end recall of high+ AND of moderate+ each beat the frozen MLP arm (as shipped) by at least
+0.05, with benign false alarms no higher.

Diagnostics added after the first run (not part of the rule): the two 80/20 readers with thresholds chosen and
applied WITHOUT the run-time gates (same limits; the gates pass only 2.7% of tuning units), the "gate ceiling" on
dev4 (share of the items rules + classifier under-triage that have any sentence the gates let through) and the
GoEmotions TEST comments each reader alone would raise (unseen everyday text).

First run (dev4, end to end; recall high+ / moderate+ / benign false alarms): frozen MLP shipped 0.237 / 0.359 /
0.074, fine-tuned (gated) 0.230 / 0.364 / 0.074 -> the rule says do not ship. Diagnostic: fine-tuned ungated
0.289 / 0.405 / 0.074 (0 of 5,427 GoEmotions test comments raised), frozen ungated 0.215 / 0.333 / 0.074; the gates
let through a sentence of only 18% (high+) / 22% (moderate+) of the items the rules miss.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # the other core is someone else's

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("MENTALENS_DATA", str(REPO.parent / "shared" / "data"))

import numpy as np  # noqa: E402

from mentalens.safety import assess, learned, semantic, sentence_encoder  # noqa: E402
from mentalens.safety.learned import LearnedBuildConfig, LearnedRiskModel  # noqa: E402

TUNE = ("dev", "dev2", "dev3")
VALID = "dev4"
DATA = REPO / "bench" / "data" / "safety_eval.jsonl"
OUT = REPO / "bench" / "results" / "safety_finetune.json"
CKPT = Path("/tmp/safety_finetune_reader.pt")


@dataclasses.dataclass
class FinetuneConfig:
    rank: int = 8  # alpha = 2 * rank, as analyze/tuning.py
    dropout: float = 0.1
    targets: tuple[str, ...] = ("query", "value")
    epochs: int = 3
    lr: float = 1e-3  # LoRA (AdamW, 6% warmup, linear decay, grad clip 1.0), as analyze/tuning.py
    head_lr: float = 5e-4  # the head starts from the fitted frozen MLP: smaller steps
    batch: int = 32
    max_tokens: int = 64
    everyday: int = 0  # GoEmotions train units kept for the fine-tune (0: all; total weight unchanged either way)
    holdout_fold: int = 0  # of learned._folds(items, 5, seed)
    seed: int = 0


# ------------------------------------------------------------------------------------------------ plumbing
class Recorder:
    """Wraps the frozen encoder: returns its vectors unchanged and remembers the text each vector came from, so
    a reader handed frozen vectors (by `TrainingData.probs` or `semantic_cues`) can embed the same text again."""

    def __init__(self, inner: Any):
        self.inner, self.text = inner, {}

    def encode(self, texts: Any) -> Any:
        v = np.asarray(self.inner.encode(list(texts)), dtype=np.float32)
        for t, row in zip(texts, v, strict=True):
            self.text[row.tobytes()] = t
        return v

    def flush(self) -> None:
        if hasattr(self.inner, "flush"):
            self.inner.flush()

    def texts_of(self, vecs: Any) -> list[str]:
        return [self.text[np.ascontiguousarray(r, dtype=np.float32).tobytes()] for r in np.asarray(vecs)]


def _net(path: str, cfg: FinetuneConfig, mlp: LearnedRiskModel) -> tuple[Any, Any]:
    """PEFT-wrapped all-MiniLM-L6-v2 + the 384-256-4 head initialised from the frozen MLP's weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    torch.manual_seed(cfg.seed)
    base = AutoModel.from_pretrained(path)
    lora = LoraConfig(r=cfg.rank, lora_alpha=2 * cfg.rank, lora_dropout=cfg.dropout, target_modules=list(cfg.targets))
    model = get_peft_model(base, lora)
    layers: list[Any] = []
    for k, (w, b) in enumerate(zip(mlp.weights, mlp.biases, strict=True)):
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.asarray(w, dtype=np.float32).T))
            lin.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))
        layers.append(lin)
        if k < len(mlp.weights) - 1:
            layers.append(torch.nn.ReLU())
    return model, torch.nn.Sequential(*layers)


def _pool(model: Any, ids: Any, mask: Any) -> Any:
    import torch.nn.functional as F

    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return F.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=1)


def _batches(tok: Any, texts: list[str], order: list[int], size: int, max_tokens: int) -> list[tuple[list[int], Any]]:
    enc = tok(texts, truncation=True, max_length=max_tokens)["input_ids"]
    out = []
    for s in range(0, len(order), size):
        idx = order[s:s + size]
        width = max(len(enc[i]) for i in idx)
        ids = np.full((len(idx), width), tok.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for j, i in enumerate(idx):
            ids[j, :len(enc[i])] = enc[i]
            mask[j, :len(enc[i])] = 1
        out.append((idx, (ids, mask)))
    return out


class FineTunedReader:
    """The interface `semantic_cues` uses of a LearnedRiskModel (reading, thresholds, probabilities, decide);
    `probabilities` gets the frozen vectors of the neutral reading and embeds their texts with the tuned encoder."""

    reading = "neutral"
    decide = LearnedRiskModel.decide

    def __init__(self, model: Any, head: Any, tok: Any, recorder: Recorder, max_tokens: int):
        self.model, self.head, self.tok, self.recorder, self.max_tokens = model, head, tok, recorder, max_tokens
        self.thresholds = [1.0] * 4
        self.cache: dict[str, Any] = {}

    def prob_texts(self, texts: list[str], bar: bool = False) -> Any:
        import torch

        todo = sorted({t for t in texts if t not in self.cache}, key=len)
        if todo:
            batches = _batches(self.tok, todo, list(range(len(todo))), 64, self.max_tokens)
            it = batches
            if bar:
                from tqdm import tqdm

                it = tqdm(batches, desc="  tuned encoder", unit="batch", mininterval=5)
            with torch.inference_mode():
                for idx, (ids, mask) in it:
                    p = torch.sigmoid(self.head(_pool(self.model, torch.from_numpy(ids), torch.from_numpy(mask))))
                    for j, i in enumerate(idx):
                        self.cache[todo[i]] = p[j].double().numpy()
        if not texts:
            return np.zeros((0, 4))
        return np.stack([self.cache[t] for t in texts])

    def probabilities(self, vecs: Any) -> Any:
        texts = self.recorder.texts_of(vecs)
        return self.prob_texts(texts, bar=len(texts) > 500)


def finetune(texts: list[str], y: Any, sw: Any, mlp: LearnedRiskModel, cfg: FinetuneConfig,
             say: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer

    path = sentence_encoder.model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model, head = _net(path, cfg, mlp)
    t = torch.tensor(np.stack([(y >= h.rank) for h in learned.HEADS], axis=1).astype(np.float32))
    sw_t = torch.tensor(sw, dtype=torch.float32)
    rng = random.Random(cfg.seed)
    lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=cfg.max_tokens)["input_ids"]]
    # length-bucketed batches (little padding), reshuffled each epoch
    steps_per_epoch = (len(texts) + cfg.batch - 1) // cfg.batch
    total = steps_per_epoch * cfg.epochs
    warmup = max(1, int(0.06 * total))
    opt = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr},
                             {"params": list(head.parameters()), "lr": cfg.head_lr}], weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup)))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(f"fine-tuning: {len(texts)} units, {trainable:,} LoRA params, {cfg.epochs} epochs x {steps_per_epoch} steps")
    model.train()
    head.train()
    t0, history = time.time(), []
    bar = tqdm(total=total, desc="  fine-tune", unit="step", mininterval=10)
    for _epoch in range(cfg.epochs):
        order = list(range(len(texts)))
        rng.shuffle(order)
        chunks = [sorted(order[s:s + cfg.batch * 50], key=lambda i: lengths[i])
                  for s in range(0, len(order), cfg.batch * 50)]
        batches = [b for c in chunks for b in _batches(tok, texts, c, cfg.batch, cfg.max_tokens)]
        rng.shuffle(batches)
        losses = []
        for idx, (ids, mask) in batches:
            logits = head(_pool(model, torch.from_numpy(ids), torch.from_numpy(mask)))
            per = torch.nn.functional.binary_cross_entropy_with_logits(logits, t[idx], reduction="none").sum(1)
            loss = (per * sw_t[idx]).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        history.append(round(float(np.mean(losses)), 5))
        say(f"  epoch {_epoch + 1}: mean loss {history[-1]}")
    bar.close()
    model.eval()
    head.eval()
    info = {"train_wall_s": round(time.time() - t0, 1), "steps": total, "units": len(texts),
            "trainable_lora_params": int(trainable), "loss_per_epoch": history}
    return model.merge_and_unload(), head, tok, info


# ------------------------------------------------------------------------------------------------ metrics
def e2e(rows: list[dict], reader: Any, *, semantic_on: bool = True, gated: bool = True) -> dict[str, float]:
    """dev4 end to end through `assess` with `reader` as the learned reader (None: bank only); aggregates only.
    gated=False (diagnostic only) lets every learned raise stand (semantic.learned_gate patched to True)."""
    from safety_eval import labelled_metrics

    orig, orig_gate = semantic.get_learned, semantic.learned_gate
    semantic.get_learned = lambda: reader
    if not gated:
        semantic.learned_gate = lambda _c, _b: True
    before = semantic.status()["failures"]
    try:
        preds = {r["id"]: assess(r["messages"], semantic=semantic_on) for r in rows}
    finally:
        semantic.get_learned, semantic.learned_gate = orig, orig_gate
    if semantic.status()["failures"] != before:
        raise RuntimeError(f"the semantic layer failed during the run: {semantic.status()['last_error']}")
    m = labelled_metrics(rows, preds)
    return {"recall_high_plus": m["recall_high_imminent"], "recall_moderate_plus": m["recall_moderate_plus"],
            "recall_any_risk": m["recall_any_risk"], "benign_false_alarm_rate": m["benign_false_alarm_rate"],
            "benign_false_alarms": len(m["benign_false_alarms"]), "benign_n": m["benign_lookalikes"],
            "exact_level_accuracy": m["exact_level_accuracy"], "over_triage": m["over_triage"],
            "under_triage": m["under_triage"]}


def holdout_thresholds(td: Any, hold: list[Any], reader: Any, cfg: LearnedBuildConfig,
                       bank: Any, gated: bool = True) -> tuple[list[float], dict]:
    """Thresholds chosen on the hold-out items (+ GoEmotions dev) with the gates, as build_learned does out of fold
    (gated=False: without them, the diagnostic arms)."""
    if gated:
        reader = Gated(reader, bank)
    else:
        td = dataclasses.replace(td, gate=None)
    th = dataclasses.replace(td, items=hold)
    live = {it.id: td.probs(reader, it.live) for it in hold}
    every = {it.id: td.probs(reader, it.every) for it in hold}
    dev = [td.probs(reader, ls, td.dev_vec) for _, ls in td.dev_comments]
    thr, s = learned.choose_thresholds(learned.Scorer(th, live, every, dev), cfg)
    return thr, {k: round(float(v), 4) for k, v in s.items()}


def speed(reader: FineTunedReader, texts: list[str]) -> dict[str, Any]:
    """Per-sentence ms, same run, one thread: the frozen weights vs the merged tuned weights, both eager PyTorch
    (same code), batches of 64 and one sentence at a time; and the shipped frozen encoder's runtime (ONNX)."""
    import torch
    from transformers import AutoModel

    frozen = AutoModel.from_pretrained(sentence_encoder.model_path()).eval()

    def run(model: Any, ts: list[str], bs: int) -> float:
        b = _batches(reader.tok, ts, sorted(range(len(ts)), key=lambda i: len(ts[i])), bs, reader.max_tokens)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for _, (ids, mask) in b:
                _pool(model, torch.from_numpy(ids), torch.from_numpy(mask))
        return round((time.perf_counter() - t0) * 1000 / len(ts), 3)

    out: dict[str, Any] = {}
    for bs, ts in ((64, texts), (1, texts[:64])):
        out[f"frozen_torch_ms_batch{bs}"] = run(frozen, ts, bs)
        out[f"tuned_torch_ms_batch{bs}"] = run(reader.model, ts, bs)
    enc = sentence_encoder.get_encoder()
    t0 = time.perf_counter()
    enc._forward(texts, 64)
    out["frozen_shipped_runtime_ms_batch64"] = round((time.perf_counter() - t0) * 1000 / len(texts), 3)
    out["shipped_runtime"] = enc.runtime
    out["sentences"] = len(texts)
    return out


def gate_ceiling(rows: list[dict], encoder: Any, bank: Any) -> dict[str, Any]:
    """Aggregate only: of the items rules + classifier leave below their gold level, the share with at least one
    sentence the learned reader reads (learned._item_units: live, English) that passes the run-time gates (frozen
    vectors of the neutral reading): the most any gated reader could raise."""
    out: dict[str, Any] = {}
    for name, lo in (("high_plus", 3), ("moderate_plus", 2)):
        its = [it for it in (learned._item_units(r) for r in rows) if it.gold >= lo and it.level_before < lo]
        ok = 0
        for it in its:
            if it.live:
                v = encoder.encode([learned.read(u, "neutral") for u in it.live])
                ok += any(semantic.learned_gate(c, b) for _, c, b in bank.match(v))
        out[name] = {"missed_before_reader": len(its), "with_a_gated_sentence": ok,
                     "share": round(ok / max(len(its), 1), 4)}
    return out


def everyday_unseen(readers: dict[str, tuple[Any, bool]], encoder: Any, bank: Any) -> dict[str, Any]:
    """GoEmotions TEST comments (never trained or tuned on by any arm) that each learned reader alone would raise
    above rules + classifier: the everyday false alarms on text the thresholds never saw (GoEmotions dev, where
    they were chosen at 0 raises, is in-sample for them)."""
    from mentalens.data import load_goemotions

    comments = sorted((r for r in load_goemotions(None, split="test") if r.text.strip()), key=lambda r: r.id)
    before, lives = [], []
    for r in comments:
        a = assess(r.text, semantic=False)
        disc = semantic.cues_left_to_rules(a.cues, a.level)
        before.append(a.level.rank)
        lives.append([r.text[s:e] for _i, s, e in semantic.message_units([r.text])
                      if not semantic._discounted((_i, s, e), disc) and learned.english(r.text[s:e])])
    units = sorted({u for ls in lives for u in ls})
    vec = dict(zip(units, encoder.encode([learned.read(u, "neutral") for u in units]), strict=True))
    out: dict[str, Any] = {"comments": len(comments), "units": len(units)}
    for name, (reader, gated) in readers.items():
        r = Gated(reader, bank) if gated else reader
        p = r.probabilities(np.stack([vec[u] for u in units]))
        lv = {u: lvl.rank for u, (lvl, _) in zip(units, reader.decide(p), strict=True)}
        n = sum(max((lv[u] for u in ls), default=0) > b for ls, b in zip(lives, before, strict=True))
        out[name] = {"raised": int(n), "rate": round(n / max(len(comments), 1), 5)}
    return out


class Gated:
    """A reader seen through the run-time gates: units the gates stop score 0 without being embedded again
    (`TrainingData.probs` multiplies them by 0 anyway: same figures, fewer forward passes)."""

    def __init__(self, reader: Any, bank: Any):
        self.reader, self.bank = reader, bank

    def probabilities(self, vecs: Any) -> Any:
        vecs = np.asarray(vecs, dtype=np.float32)
        ok = np.array([semantic.learned_gate(c, b) for _, c, b in self.bank.match(vecs)], dtype=bool)
        out = np.zeros((len(vecs), len(learned.HEADS)))
        if ok.any():
            out[ok] = self.reader.probabilities(vecs[ok])
        return out


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=FinetuneConfig.epochs)
    ap.add_argument("--everyday", type=int, default=FinetuneConfig.everyday)
    ap.add_argument("--reuse", action="store_true", help=f"reuse the fine-tuned reader saved at {CKPT}")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    fcfg = FinetuneConfig(epochs=args.epochs, everyday=args.everyday)
    cfg = LearnedBuildConfig()  # neutral reading, gated, the shipped limits
    learned.TUNE_SPLITS = TUNE  # this experiment's tuning splits, whatever the module says now
    t_start = time.time()

    def say(m: str) -> None:
        print(f"[{time.time() - t_start:7.1f}s] {m}", flush=True)

    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    valid = [r for r in rows if r["split"] == VALID]
    frozen = sentence_encoder.get_encoder()
    rec = Recorder(learned.CachedEncoder(frozen, learned.default_cache()))
    td = learned.collect(DATA, None, cfg, rec, TUNE, semantic.HELD_OUT_SPLITS, say)
    assert {r["split"] for r in rows if r["id"] in {it.id for it in td.items}} == set(TUNE)
    bank = semantic.get_bank()
    td.gate = learned.gates(td, bank)
    say(f"{len(td.items)} tuning items, {len(td.vec)} units, {len(td.every_x)} everyday units; "
        f"gates pass {np.mean(list(td.gate.values())):.3f} of units")

    # --- arm: frozen MLP as shipped (5-fold CV on dev..dev3)
    t0 = time.time()
    mlp_shipped, rep = learned.build_learned(DATA, cfg=cfg, training=td, bank=bank, progress=say)
    shipped_s = time.time() - t0
    assert rep["tune_splits"] == list(TUNE)

    # --- the 80/20 protocol
    fold = learned._folds(td.items, 5, cfg.seed)
    train = [it for it, f in zip(td.items, fold, strict=True) if f != fcfg.holdout_fold]
    hold = [it for it, f in zip(td.items, fold, strict=True) if f == fcfg.holdout_fold]
    say(f"80/20: {len(train)} train items, {len(hold)} hold-out items "
        f"({sum(it.gold == 0 for it in hold)} benign)")
    t0 = time.time()
    first = learned._fit(*learned._training_set(td, train, cfg, None), cfg)
    mlp80 = learned._fit(*learned._training_set(td, train, cfg, first), cfg)
    mlp80_fit_s = time.time() - t0
    mlp80.thresholds, mlp80_hold = holdout_thresholds(td, hold, mlp80, cfg, bank)
    say(f"frozen MLP 80/20: thresholds {mlp80.thresholds}, hold-out {mlp80_hold}")

    # fine-tune on the same units (MIL picks of the frozen first pass); --everyday N subsamples the negatives
    n_ev = len(td.every_x)
    keep = np.sort(np.random.default_rng(fcfg.seed).choice(n_ev, min(fcfg.everyday or n_ev, n_ev), replace=False))
    x, y, w = learned._training_set(dataclasses.replace(td, every_x=td.every_x[keep]), train, cfg, first)
    texts = rec.texts_of(x)
    sw = learned.balanced_weights(y >= 1, w)  # as learned._fit's MLP, mean 1
    sw = sw / sw.mean()
    if args.reuse and CKPT.is_file():
        from transformers import AutoModel, AutoTokenizer

        ck = torch.load(CKPT, weights_only=False)
        model = AutoModel.from_pretrained(sentence_encoder.model_path())
        model.load_state_dict(ck["model"])
        _, head = _net(sentence_encoder.model_path(), fcfg, mlp80)
        head.load_state_dict(ck["head"])
        model.eval()
        head.eval()
        tok, info = AutoTokenizer.from_pretrained(sentence_encoder.model_path()), ck["info"]
    else:
        model, head, tok, info = finetune(texts, y, sw, mlp80, fcfg, say)
        torch.save({"model": model.state_dict(), "head": head.state_dict(), "info": info}, CKPT)
    reader = FineTunedReader(model, head, tok, rec, fcfg.max_tokens)
    say("tuned reader on the hold-out and GoEmotions dev units (those the gates let through)")
    t0 = time.time()
    reader.thresholds, ft_hold = holdout_thresholds(td, hold, reader, cfg, bank)
    say(f"  ({time.time() - t0:.0f}s)")
    say(f"fine-tuned: thresholds {reader.thresholds}, hold-out {ft_hold}")
    # diagnostic (added after seeing that the gates pass 2.7% of tuning units, before any dev4 figure): the same
    # two 80/20 readers with thresholds chosen and applied WITHOUT the run-time gates, same false-alarm limits
    mlp80_ng = dataclasses.replace(mlp80)
    mlp80_ng.thresholds, mlp80_ng_hold = holdout_thresholds(td, hold, mlp80, cfg, bank, gated=False)
    say(f"frozen MLP 80/20 ungated: thresholds {mlp80_ng.thresholds}, hold-out {mlp80_ng_hold}")
    reader_ng = FineTunedReader(model, head, tok, rec, fcfg.max_tokens)
    reader_ng.cache = reader.cache
    reader_ng.thresholds, ft_ng_hold = holdout_thresholds(td, hold, reader_ng, cfg, bank, gated=False)
    say(f"fine-tuned ungated: thresholds {reader_ng.thresholds}, hold-out {ft_ng_hold}")

    # --- dev4, end to end, all arms in this run (the bank sees frozen vectors in every arm)
    orig_get = sentence_encoder.get_encoder
    live_rec = Recorder(frozen)
    sentence_encoder.get_encoder = lambda: live_rec
    reader.recorder = reader_ng.recorder = live_rec
    try:
        say(f"{VALID}: {len(valid)} items end to end, seven arms")
        arms = {"rules_classifier": e2e(valid, None, semantic_on=False),
                "bank": e2e(valid, None),
                "frozen_mlp_shipped_cv5": e2e(valid, mlp_shipped),
                "frozen_mlp_holdout80": e2e(valid, mlp80),
                "finetuned_holdout80": e2e(valid, reader),
                "diag_frozen_mlp_holdout80_ungated": e2e(valid, mlp80_ng, gated=False),
                "diag_finetuned_holdout80_ungated": e2e(valid, reader_ng, gated=False)}
        ceiling = gate_ceiling(valid, live_rec, bank)
        say("GoEmotions test comments (unseen everyday text)")
        unseen = everyday_unseen({"frozen_mlp_shipped_cv5": (mlp_shipped, True), "frozen_mlp_holdout80": (mlp80, True),
                                  "finetuned_holdout80": (reader, True),
                                  "diag_frozen_mlp_holdout80_ungated": (mlp80_ng, False),
                                  "diag_finetuned_holdout80_ungated": (reader_ng, False)}, live_rec, bank)
    finally:
        sentence_encoder.get_encoder = orig_get
    sample = sorted(td.dev_vec)[:: max(1, len(td.dev_vec) // 256)][:256]
    sample = [learned.read(u, "neutral") for u in sample]  # GoEmotions dev sentences (not dev4)
    say("timing the encoders")
    timing = speed(reader, sample)

    base, new = arms["frozen_mlp_shipped_cv5"], arms["finetuned_holdout80"]
    d_hi = round(new["recall_high_plus"] - base["recall_high_plus"], 4)
    d_mod = round(new["recall_moderate_plus"] - base["recall_moderate_plus"], 4)
    ship = d_hi >= 0.05 and d_mod >= 0.05 and new["benign_false_alarm_rate"] <= base["benign_false_alarm_rate"]
    ctrl = arms["frozen_mlp_holdout80"]

    print(f"\n{VALID} (n={len(valid)}, first sight, end to end through assess)")
    hdr = (f"{'arm':24s} {'rec high+':>9s} {'rec mod+':>9s} {'any risk':>9s} {'benign FA':>9s} {'exact':>7s} "
           f"{'over':>7s}")
    print(hdr)
    for k, m in arms.items():
        print(f"{k:24s} {m['recall_high_plus']:>9.3f} {m['recall_moderate_plus']:>9.3f} {m['recall_any_risk']:>9.3f} "
              f"{m['benign_false_alarm_rate']:>9.3f} {m['exact_level_accuracy']:>7.3f} {m['over_triage']:>7.3f}")
    print("\nthresholds (low, moderate, high, imminent) and tuning figures (system level, gated)")
    oof = rep["out_of_fold_at_thresholds"]
    for name, thr, s in (("frozen MLP shipped cv5", mlp_shipped.thresholds, oof),
                         ("frozen MLP 80/20", mlp80.thresholds, mlp80_hold),
                         ("fine-tuned 80/20", reader.thresholds, ft_hold),
                         ("diag frozen 80/20 ungated", mlp80_ng.thresholds, mlp80_ng_hold),
                         ("diag tuned 80/20 ungated", reader_ng.thresholds, ft_ng_hold)):
        print(f"{name:24s} thr {[round(t, 3) for t in thr]}  high+ {s['recall_high_plus']:.3f} mod+ "
              f"{s['recall_moderate_plus']:.3f} alone high+ {s['alone_recall_high_plus']:.3f} alone mod+ "
              f"{s['alone_recall_moderate_plus']:.3f} benign {s['benign_raised']} everyday {s['everyday_raised']}")
    print(f"\nfine-tune: {info['train_wall_s']:.0f}s training ({info['steps']} steps, {info['units']} units, "
          "1 thread); "
          f"frozen MLP shipped build (5-fold + final fit) {shipped_s:.0f}s; frozen MLP 80/20 fit {mlp80_fit_s:.0f}s")
    print(f"encoder ms/sentence (1 thread): {timing}")
    print(f"GoEmotions test comments raised by each learned reader alone (unseen everyday text): {unseen}")
    print(f"gate ceiling on {VALID} (share of items below gold after rules + classifier with >= 1 sentence the "
          f"gates let through): {ceiling}")
    print(f"\ndecision rule: high+ {d_hi:+.3f}, moderate+ {d_mod:+.3f} (need >= +0.05 each), benign FA "
          f"{new['benign_false_alarm_rate']:.3f} vs {base['benign_false_alarm_rate']:.3f} -> "
          f"{'SHIP' if ship else 'do not ship'}")

    result = {
        "command": "nice -n 10 python bench/safety_finetune.py"
        + (f" --epochs {args.epochs}" if args.epochs != FinetuneConfig.epochs else "")
        + (f" --everyday {args.everyday}" if args.everyday != FinetuneConfig.everyday else ""),
        "validation_split": VALID, "tune_splits": list(TUNE), "n_valid": len(valid),
        "protocol": "fine-tuned reader: fixed grouped 20% hold-out of dev..dev3 items (learned._folds fold 0) for "
                    "thresholds, trained on the other 80%; frozen MLP shipped: learned.build_learned (5-fold CV)",
        "decision_rule": "ship only if dev4 e2e recall high+ AND moderate+ each beat the frozen MLP (shipped) arm by "
                         ">= +0.05 with benign false alarms no higher",
        "decision": {"delta_recall_high_plus": d_hi, "delta_recall_moderate_plus": d_mod, "ship": ship,
                     "delta_vs_frozen_80_20_control": {
                         "recall_high_plus": round(new["recall_high_plus"] - ctrl["recall_high_plus"], 4),
                         "recall_moderate_plus": round(new["recall_moderate_plus"] - ctrl["recall_moderate_plus"], 4)}},
        "dev4_end_to_end": arms,
        "thresholds": {"frozen_mlp_shipped_cv5": [round(t, 4) for t in mlp_shipped.thresholds],
                       "frozen_mlp_holdout80": [round(t, 4) for t in mlp80.thresholds],
                       "finetuned_holdout80": [round(t, 4) for t in reader.thresholds],
                       "diag_frozen_mlp_holdout80_ungated": [round(t, 4) for t in mlp80_ng.thresholds],
                       "diag_finetuned_holdout80_ungated": [round(t, 4) for t in reader_ng.thresholds]},
        "tuning_figures": {"frozen_mlp_shipped_cv5_out_of_fold": oof, "frozen_mlp_holdout80_holdout": mlp80_hold,
                           "finetuned_holdout80_holdout": ft_hold,
                           "diag_frozen_mlp_holdout80_ungated_holdout": mlp80_ng_hold,
                           "diag_finetuned_holdout80_ungated_holdout": ft_ng_hold},
        "dev4_gate_ceiling": ceiling,
        "goemotions_test_raised_by_reader_alone": unseen,
        "reused_checkpoint": bool(args.reuse and CKPT.is_file()),
        "tuning_units_passing_gates": round(float(np.mean(list(td.gate.values()))), 4),
        "finetune": {**info, "config": dataclasses.asdict(fcfg), "train_units_everyday": int(len(keep))},
        "build_seconds": {"finetune_training": info["train_wall_s"], "frozen_mlp_shipped_build": round(shipped_s, 1),
                          "frozen_mlp_80_20_fit": round(mlp80_fit_s, 1)},
        "inference_ms_per_sentence": timing,
        "note": "2 shared CPU cores under load from other developers; torch/BLAS at 1 thread. The tuned reader needs "
                "a second encoder pass per sentence at run time (the bank and the gates stay on frozen vectors).",
        "total_wall_s": round(time.time() - t_start, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
