"""`mentalens train analyzer`: rebuild the analyzer artefact from leakage-free data with fixed seeds.

First the encoder is LoRA-tuned on the train splits (`analyze.tuning`; skipped with tuning.enabled=false, reused
from the cache or from adapter=DIR), then the heads are fitted on the tuned encoder's features:

For each head: features of every training post (cached on disk per encoder), then logistic regression with
its inverse regularisation C (and, for IRF, the weight of the differently-labelled raw IRF posts) chosen by
stratified k-fold cross-validation on the leakage-free training + validation posts, the decision threshold of
binary heads tuned on the out-of-fold probabilities (weighted F1, IMHI's metric), and a final fit on all of
them. Emotions: 28 independent sigmoids trained jointly on GoEmotions train, C and per-label thresholds
chosen on GoEmotions dev. T-SID learns from weak labels on other data; loneliness reuses the
thwarted-belongingness head (zero-shot transfer): neither ever sees an IMHI test post.

IMHI test sets are never read here except by the leakage guard, which removes their posts from training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mentalens.analyze.datasets import HeadData, TrainingData, build_training_data
from mentalens.analyze.encoder import Encoder, EncoderConfig
from mentalens.analyze.features import FeatureCache
from mentalens.analyze.heads import HeadSet, HeadSpec, logit
from mentalens.analyze.tuning import TuningConfig, adapter_digest, tune_encoder, tuning_tasks
from mentalens.data import GOEMOTIONS_LABELS, LeakageGuard
from mentalens.errors import ConfigError
from mentalens.paths import cache_dir, resolve_data_dir
from mentalens.tasks import get_task

Log = Callable[[str], None]


@dataclasses.dataclass
class TrainConfig:
    """Settings of `mentalens train analyzer` (defaults reproduce the shipped artefact)."""

    seed: int = 13
    folds: int = 5
    features: str = "mean+max"
    c_grid: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    irf_raw_weights: tuple[float, ...] = (0.0, 0.3, 1.0)
    emotion_c_grid: tuple[float, ...] = (1.0, 4.0, 16.0)
    encoder: EncoderConfig = dataclasses.field(
        default_factory=lambda: EncoderConfig(runtime="onnx", quantize=True, neutralize=True)
    )
    # counterfactual data augmentation (issue 10): copies of every training post with these attributes
    # rewritten (mentalens.evaluate.bias.counterfactuals) join training with the post's label; in CV a copy
    # is only ever in the fold of its source post. Gender and names need none: the encoder reads them neutral.
    augment: tuple[str, ...] = ("dialect", "age")
    # how much the copies of a post weigh, chosen per head by CV with C: "copy" (each copy as much as a post: a
    # post with three stated-age copies counts four times) or "share" (a post and its copies share one post's
    # weight, so augmentation teaches invariance without over-weighting the posts that have something to swap).
    # Why both: with "copy" only, CAMS lost 1.00 weighted F1 on its test set against the same model without
    # mitigation (issue 10 allows 0.5); CV picked "share" for CAMS, dreaddit, T-SID, IRF and one MultiWD head
    augment_weighting: tuple[str, ...] = ("copy", "share")
    cache: str | None = None  # feature cache folder (default: the user cache dir)
    # the encoder is LoRA-tuned on the train splits first (analyze.tuning; bench/analyzer_finetune.py measured
    # that it pays); `adapter` reuses an already trained adapter folder instead of training one
    tuning: TuningConfig = dataclasses.field(default_factory=TuningConfig)
    adapter: str | None = None


ADAPTER_DIR = "adapter"  # the adapter's folder inside the artefact


# ---------------------------------------------------------------------------------------------- metrics


def weighted_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Weighted F1 x100, the metric IMHI reports."""
    from sklearn.metrics import f1_score

    return float(100 * f1_score(list(y_true), list(y_pred), average="weighted", zero_division=0))


def best_threshold(y: np.ndarray, p_yes: np.ndarray, labels: Sequence[str]) -> tuple[float, float]:
    """The decision threshold on p(yes) that maximises weighted F1 (ties: closest to 0.5)."""
    best = (-1.0, 0.5)
    for t in sorted(np.round(np.arange(0.2, 0.801, 0.025), 3), key=lambda t: abs(t - 0.5)):
        f = weighted_f1(y, np.where(p_yes >= t, labels[1], labels[0]))
        if f > best[0] + 1e-9:
            best = (f, float(t))
    return best


# ---------------------------------------------------------------------------------------------- fitting


def fit_linear(
    X: np.ndarray, y: np.ndarray, labels: Sequence[str], C: float, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression -> (W, b) in head layout: one row (labels[1]) if binary, else one per label."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=2000, tol=1e-4)
    model.fit(X, y, sample_weight=sample_weight)
    classes = list(model.classes_)
    if len(labels) == 2:
        if classes != list(labels):
            raise ValueError(f"binary head expects labels {labels}, data has {classes}")
        return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    W = np.zeros((len(labels), X.shape[1]), dtype=np.float32)
    b = np.full(len(labels), -30.0, dtype=np.float32)  # a label absent from training is never predicted
    for i, lab in enumerate(labels):
        if lab in classes:
            W[i] = model.coef_[classes.index(lab)]
            b[i] = model.intercept_[classes.index(lab)]
    return W, b


def predict_proba(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    z = X @ W.T + b
    if W.shape[0] == 1:
        p = 1 / (1 + np.exp(-z[:, 0]))
        return np.stack([1 - p, p], axis=1)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def cross_val_proba(
    X: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    C: float,
    folds: int,
    seed: int,
    extra: tuple[np.ndarray, np.ndarray, float] | None = None,
    aug: Augmented | None = None,
) -> np.ndarray:
    """Out-of-fold probabilities (stratified folds); `extra` rows (X, y, weight) join every training fold;
    `aug` rows (counterfactual copies, weighted by `aug.weighting`) join the training fold of their source post."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.unique(y, return_counts=True)[1]
    k = max(2, min(folds, int(counts.min()))) if len(counts) > 1 else 2
    oof = np.zeros((len(y), len(labels)), dtype=np.float64)
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        Xt, yt, sw = training_rows(X, y, tr, extra, aug)
        W, b = fit_linear(Xt, yt, labels, C, sw)
        oof[te] = predict_proba(W, b, X[te])
    return oof


def training_rows(
    X: np.ndarray,
    y: np.ndarray,
    rows: np.ndarray,
    extra: tuple[np.ndarray, np.ndarray, float] | None = None,
    aug: Augmented | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, sample weights) of one fit: the posts `rows`, the counterfactual copies of those posts (weighted by
    `aug.weighting`) and the `extra` rows (X, y, weight; left out at weight 0). One definition for the CV folds
    and the final fit, so the model that ships is trained as the one that was scored."""
    Xt, yt, sw = X[rows], y[rows], np.ones(len(rows))
    if aug is not None and len(aug.src):
        in_rows = np.isin(aug.src, rows)
        post_w, copy_w = aug.weights(len(y))
        Xt = np.vstack([Xt, aug.X[in_rows]])
        yt = np.concatenate([yt, y[aug.src[in_rows]]])
        sw = np.concatenate([post_w[rows], copy_w[in_rows]])
    if extra is not None and extra[2] > 0:
        Xt = np.vstack([Xt, extra[0]])
        yt = np.concatenate([yt, extra[1]])
        sw = np.concatenate([sw, np.full(len(extra[1]), extra[2])])
    return Xt, yt, sw


@dataclasses.dataclass
class Augmented:
    """Features of counterfactual copies and, for each, the row of the post it was made from."""

    X: np.ndarray
    src: np.ndarray
    weighting: str = "copy"

    def weights(self, n_posts: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample weights of the n_posts originals and of the copies under `weighting`."""
        if self.weighting == "copy":
            return np.ones(n_posts), np.ones(len(self.src))
        if self.weighting != "share":
            raise ConfigError(f"unknown augment_weighting {self.weighting!r}: use 'copy' or 'share'")
        group = 1.0 + np.bincount(self.src, minlength=n_posts)  # the post and its copies
        return 1.0 / group, 1.0 / group[self.src]


def augment_texts(texts: Sequence[str], attributes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Counterfactual copies of texts for the given attributes, and the index of each copy's source."""
    from mentalens.evaluate.bias.counterfactuals import counterfactuals

    out, src = [], []
    if not attributes:
        return out, np.zeros(0, dtype=np.int64)
    for i, t in enumerate(texts):
        made, _ = counterfactuals(t, attributes)
        for c in made:
            out.append(c.text)
            src.append(i)
    return out, np.asarray(src, dtype=np.int64)


@dataclasses.dataclass
class FittedHead:
    spec: HeadSpec
    W: np.ndarray
    b: np.ndarray


def train_head(
    h: HeadData,
    X: np.ndarray,
    y: np.ndarray,
    cfg: TrainConfig,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    aug: Augmented | None = None,
) -> FittedHead:
    """Choose C (and the extra source's weight) by CV, tune the threshold, fit on everything."""
    labels = list(h.labels)
    binary = len(labels) == 2
    weights = (h.extra_weights or cfg.irf_raw_weights) if extra is not None else (0.0,)
    schemes = cfg.augment_weighting if aug is not None and len(aug.src) else ("copy",)
    best: tuple[float, float, float, float, str] | None = None  # (f1, C, weight, threshold, augment weighting)
    grid: dict[str, float] = {}
    for scheme in schemes:
        a = dataclasses.replace(aug, weighting=scheme) if aug is not None else None
        for w in weights:
            for C in cfg.c_grid:
                ex = (extra[0], extra[1], w) if extra is not None else None
                oof = cross_val_proba(X, y, labels, C, cfg.folds, cfg.seed, ex, a)
                if binary:
                    f, t = best_threshold(y, oof[:, 1], labels)
                else:
                    f, t = weighted_f1(y, np.asarray(labels)[oof.argmax(1)]), 0.5
                grid[f"C={C:g},w={w:g}" + (f",aug={scheme}" if len(schemes) > 1 else "")] = round(f, 2)
                if best is None or f > best[0] + 1e-9:
                    best = (f, C, w, t, scheme)
    assert best is not None
    f, C, w, t, scheme = best
    ex = (extra[0], extra[1], w) if extra is not None else None
    a = dataclasses.replace(aug, weighting=scheme) if aug is not None else None
    Xf, yf, sw = training_rows(X, y, np.arange(len(y)), ex, a)
    W, b = fit_linear(Xf, yf, labels, C, sw)
    if binary:
        b = b - np.float32(logit(t))  # fold the tuned threshold into the bias: p >= 0.5 <=> p_raw >= t
    metrics: dict[str, Any] = {
        "cv_weighted_f1": round(f, 2),
        "C": C,
        "n": int(len(y)),
        "labels": {lab: int((y == lab).sum()) for lab in labels},
        "grid": grid,
    }
    if binary:
        metrics["threshold"] = t
    if aug is not None:
        metrics["augmented"] = int(len(aug.src))
        if len(schemes) > 1:
            metrics["augment_weighting"] = scheme
    if extra is not None:
        metrics["extra_weight"] = w
        metrics["extra_n"] = int(len(extra[1]))
    kind = "binary" if binary else "softmax"
    spec = HeadSpec(h.key, h.task, h.aspect, labels, kind, source=h.source, metrics=metrics)
    return FittedHead(spec, W.astype(np.float32), b.astype(np.float32))


# ---------------------------------------------------------------------------------------------- emotions


def fit_multilabel(X: np.ndarray, Y: np.ndarray, C: float, seed: int, epochs: int = 200) -> tuple[np.ndarray, ...]:
    """Independent L2-regularised logistic regressions for every column of Y, fitted jointly (full-batch
    L-BFGS in torch: one matmul per step instead of 28 separate solvers)."""
    import torch

    torch.manual_seed(seed)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    Yt = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float32))
    W = torch.zeros((Y.shape[1], X.shape[1]), requires_grad=True)
    prior = np.clip(Y.mean(0), 1e-4, 1 - 1e-4)
    b = torch.tensor(np.log(prior / (1 - prior)), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=epochs, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")  # fmt: skip
    n = X.shape[0]

    def closure():
        opt.zero_grad()
        z = Xt @ W.T + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, Yt, reduction="sum") / n
        loss = loss + (W * W).sum() / (2 * C * n)
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


def tune_emotion_thresholds(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label threshold maximising that label's F1 on dev; returns (thresholds, f1 per label)."""
    grid = np.round(np.arange(0.05, 0.951, 0.025), 3)
    th, f1s = np.zeros(Y.shape[1]), np.zeros(Y.shape[1])
    for j in range(Y.shape[1]):
        y = Y[:, j] > 0
        best = (-1.0, 0.5)
        for t in grid:
            pred = P[:, j] >= t
            tp = float((pred & y).sum())
            denom = float(pred.sum() + y.sum())
            f = 2 * tp / denom if denom else 0.0
            if f > best[0] + 1e-12:
                best = (f, float(t))
        f1s[j], th[j] = best
    return th, f1s


def emotion_macro_f1(Y: np.ndarray, P: np.ndarray, thresholds: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    predicted = P >= thresholds[None, :]  # noqa: SIM300
    return float(100 * f1_score(Y > 0, predicted, average="macro", zero_division=0))


def multi_hot(labels: Sequence[tuple[str, ...]]) -> np.ndarray:
    Y = np.zeros((len(labels), len(GOEMOTIONS_LABELS)), dtype=np.float32)
    index = {lab: i for i, lab in enumerate(GOEMOTIONS_LABELS)}
    for r, labs in enumerate(labels):
        for lab in labs:
            Y[r, index[lab]] = 1.0
    return Y


def train_emotions(
    feats: dict[str, np.ndarray], labels: dict[str, Sequence[tuple[str, ...]]], cfg: TrainConfig, log: Log
) -> FittedHead:
    """The 28-label GoEmotions head: C and thresholds on dev (test is left to the quality bench)."""
    from mentalens.analyze.encoder import _l2  # noqa: F401  (features are already unit-length)

    Ytr, Ydev = multi_hot(labels["train"]), multi_hot(labels["dev"])
    best = None
    grid = {}
    for C in cfg.emotion_c_grid:
        W, b = fit_multilabel(feats["train"], Ytr, C, cfg.seed)
        P = 1 / (1 + np.exp(-(feats["dev"] @ W.T + b)))
        th, _ = tune_emotion_thresholds(Ydev, P)
        f = emotion_macro_f1(Ydev, P, th)
        grid[f"C={C:g}"] = round(f, 2)
        log(f"  emotions C={C:g}: dev macro-F1 {f:.2f}")
        if best is None or f > best[0] + 1e-9:
            best = (f, C, W, b, th)
    assert best is not None
    f, C, W, b, th = best
    metrics = {"dev_macro_f1": round(f, 2), "C": C, "n_train": int(len(Ytr)), "n_dev": int(len(Ydev)), "grid": grid}
    spec = HeadSpec("emotions", None, None, list(GOEMOTIONS_LABELS), "sigmoid",
                    thresholds=[float(x) for x in th], source="GoEmotions train (C, thresholds on dev)",
                    metrics=metrics)  # fmt: skip
    return FittedHead(spec, W, b)


# ---------------------------------------------------------------------------------------------- driver


@dataclasses.dataclass
class TrainResult:
    heads: HeadSet
    metrics: dict[str, dict[str, Any]]
    leakage: dict[str, dict[str, int]]
    output: Path | None


def _versions() -> dict[str, str]:
    import sklearn
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def train_analyzer(
    data_dir: str | Path | None = None,
    output: str | Path | None = None,
    config: TrainConfig | None = None,
    log: Log = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Build every head and (if output is given) write the artefact there."""
    cfg = config or TrainConfig()
    data = resolve_data_dir(data_dir)
    guard = LeakageGuard.from_data_dir(data)
    log(f"leakage guard: {len(guard)} IMHI test posts excluded from every training source")
    td: TrainingData = build_training_data(data, guard, seed=cfg.seed)
    for name, rep in sorted(td.leakage.items()):
        log(f"  {name}: kept {rep.kept}, dropped {rep.dropped}")
    enc_cfg = dataclasses.replace(cfg.encoder, adapter=_encoder_adapter(cfg, td, log, progress))
    encoder = Encoder(enc_cfg)
    cache = FeatureCache(encoder, Path(cfg.cache) if cfg.cache else cache_dir("analyzer", "features"), cfg.features)

    def feats(texts: list[str], name: str) -> np.ndarray:
        cb = (lambda done, total: progress(name, done, total)) if progress else None
        return cache.features(texts, name, progress=cb)

    def augmented(texts: list[str], name: str) -> Augmented | None:
        if not cfg.augment:
            return None
        aug_texts, src = augment_texts(texts, cfg.augment)
        X_aug = feats(aug_texts, name) if aug_texts else np.zeros((0, 1), dtype=np.float32)
        return Augmented(X_aug, src)

    fitted: list[FittedHead] = []
    for key, h in td.heads.items():
        parts, ys = [], []
        for split_name, split in (("train", h.train), ("val", h.val)):
            if len(split):
                parts.append(feats(split.texts, f"{key}-{split_name}"))
                ys.extend(split.labels)
        X, y = np.vstack(parts), np.asarray(ys)
        extra = None
        if h.extra_train is not None and len(h.extra_train):
            extra = (feats(h.extra_train.texts, f"{key}-extra"), np.asarray(h.extra_train.labels))
        fh = train_head(h, X, y, cfg, extra, augmented(h.train.texts + h.val.texts, f"{key}-augmented"))
        fitted.append(fh)
        m = fh.spec.metrics
        log(f"{key}: CV weighted F1 {m['cv_weighted_f1']:.2f} (n={m['n']}, C={m['C']:g}"
            + (f", threshold={m['threshold']:.3f}" if "threshold" in m else "")
            + (f", extra-source weight={m['extra_weight']:g}" if "extra_weight" in m else "") + ")")  # fmt: skip

    if td.tsid_weak is not None:
        h = td.tsid_weak
        X = np.vstack([feats(h.train.texts, "tsid-train"), feats(h.val.texts, "tsid-val")])
        y = np.asarray(h.train.labels + h.val.labels)
        fh = train_head(h, X, y, cfg, aug=augmented(h.train.texts + h.val.texts, "tsid-augmented"))
        fh.spec.metrics["note"] = "CV on weak labels, not on T-SID"
        fitted.append(fh)
        log(f"T-SID (weak labels): CV weighted F1 on the weak labels {fh.spec.metrics['cv_weighted_f1']:.2f}")

    tb = next(f for f in fitted if f.spec.key == "IRF.thwarted belongingness")
    lonely = get_task("loneliness")
    fitted.append(
        FittedHead(
            HeadSpec("loneliness", lonely.name, None, list(lonely.labels), "binary",
                     source="zero-shot transfer of the thwarted-belongingness head (no loneliness training data)",
                     transfer=tb.spec.key, metrics={"note": "no training or validation data: transfer"}),
            tb.W.copy(), tb.b.copy(),
        )
    )  # fmt: skip
    log("loneliness: zero-shot transfer of the IRF thwarted-belongingness head")

    emo_feats = {s: feats(td.emotions[s][0], f"goemotions-{s}") for s in ("train", "dev")}
    emo = train_emotions(emo_feats, {s: td.emotions[s][1] for s in ("train", "dev")}, cfg, log)
    fitted.append(emo)
    log(f"emotions: dev macro-F1 {emo.spec.metrics['dev_macro_f1']:.2f} (C={emo.spec.metrics['C']:g})")

    order = ["DR", "dreaddit", "SAD", "CAMS", "loneliness", "T-SID"]
    fitted.sort(key=lambda f: (order.index(f.spec.key) if f.spec.key in order else len(order), f.spec.key))
    fitted.sort(key=lambda f: f.spec.key == "emotions")
    specs, Ws, bs, start = [], [], [], 0
    for f in fitted:
        f.spec.start, f.spec.size = start, f.W.shape[0]
        start += f.W.shape[0]
        specs.append(f.spec)
        Ws.append(f.W)
        bs.append(f.b)
    shipped_encoder = dataclasses.replace(cfg.encoder, adapter=ADAPTER_DIR if enc_cfg.adapter else None)
    meta = {
        "encoder": dataclasses.asdict(shipped_encoder),
        "features": cfg.features,
        "trained": {
            "seed": cfg.seed,
            "folds": cfg.folds,
            "c_grid": list(cfg.c_grid),
            "augment": list(cfg.augment),
            "augment_weighting": list(cfg.augment_weighting),
            "tuning": _tuning_log(enc_cfg.adapter),
            "command": "mentalens train analyzer --data DIR --output src/mentalens/resources/analyzer",
            "leakage": td.leakage_summary(),
            "counts": {k: h.counts() for k, h in td.heads.items()}
            | ({"T-SID": td.tsid_weak.counts()} if td.tsid_weak else {}),
            "versions": _versions(),
        },
    }
    heads = HeadSet(specs, np.vstack(Ws), np.concatenate(bs), meta)
    out = None
    if output is not None:
        out = Path(output).expanduser()
        if enc_cfg.adapter:
            _copy_adapter(Path(enc_cfg.adapter), out / ADAPTER_DIR)
        heads.save(out)
        log(f"wrote the analyzer artefact to {out}")
    return TrainResult(heads, {s.key: s.metrics for s in specs}, td.leakage_summary(), out)


def _encoder_adapter(
    cfg: TrainConfig, td: TrainingData, log: Log, progress: Callable[[str, int, int], None] | None = None
) -> str | None:
    """The adapter folder the heads are trained over: the one given, one trained earlier on the same data with
    the same settings (cached by their hash), or a new one (tens of minutes on a 2-core CPU)."""
    if cfg.adapter:
        folder = Path(cfg.adapter).expanduser()
        if not (folder / "adapter_config.json").is_file():
            raise ConfigError(f"adapter={cfg.adapter}: no adapter_config.json there: give a PEFT adapter folder")
        log(f"encoder: reusing the LoRA adapter in {folder} ({adapter_digest(folder)})")
        return str(folder)
    if not cfg.tuning.enabled:
        return None
    tasks = tuning_tasks(td, cfg.tuning.max_train_posts, cfg.tuning.seed)
    h = hashlib.sha1(json.dumps([dataclasses.asdict(cfg.tuning), dataclasses.asdict(cfg.encoder)], sort_keys=True,
                                default=str).encode())  # fmt: skip
    for name, (texts, labels, _) in sorted(tasks.items()):
        h.update(name.encode())
        h.update(json.dumps([texts, labels]).encode())
    folder = cache_dir("analyzer", "adapters") / h.hexdigest()[:16]
    if (folder / "adapter_config.json").is_file():
        log(f"encoder: LoRA adapter already trained on this data with these settings: {folder}")
        return str(folder)
    base = dataclasses.replace(cfg.encoder, runtime="torch", quantize=False, adapter=None)
    n = {k: len(v[0]) for k, v in tasks.items()}
    log(f"encoder: LoRA fine-tuning (r={cfg.tuning.rank}, {cfg.tuning.epochs} epochs) on the train splits {n}")
    steps = (lambda done, total: progress("LoRA tuning steps", done, total)) if progress else None
    result = tune_encoder(Encoder(base), tasks, cfg.tuning, log, steps)
    tmp = folder.with_name(folder.name + f".{os.getpid()}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    result.save_adapter(tmp, cfg.encoder.model)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    log(f"encoder: adapter trained in {result.info['wall_s']:.0f}s, saved to {folder}")
    return str(folder)


def _tuning_log(adapter: str | None) -> dict[str, Any] | None:
    """What the adapter's training wrote about itself (settings, posts, loss), for the manifest."""
    if not adapter:
        return None
    f = Path(adapter) / "training.json"
    info = json.loads(f.read_text()) if f.is_file() else {}
    keep = ("config", "posts", "steps", "tokens", "trainable_params", "loss_per_epoch")
    return {"adapter_sha1": adapter_digest(adapter), **{k: info[k] for k in keep if k in info}}


def _copy_adapter(src: Path, dst: Path) -> None:
    """Copy the adapter files into the artefact (atomically replacing an older adapter)."""
    tmp = dst.with_name(dst.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "training.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, tmp / name)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.replace(dst)


__all__ = ["TrainConfig", "TrainResult", "train_analyzer", "weighted_f1"]
