"""BARTScore (Yuan, Neubig & Liu, NeurIPS 2021) exactly as defined, batched by length.

    BARTScore(x -> y) = 1/|y| * sum_t log p(y_t | y_<t, x)        (mean token log-likelihood, <= 0)

with y tokenised by BART's tokenizer (<s> ... </s>, truncated to 1024 tokens) and teacher-forced through the
decoder, as the authors' `BARTScorer.score` computes it. Directions (the paper's names):

    src_hyp  s -> h   faithfulness
    ref_hyp  r -> h   precision
    hyp_ref  h -> r   recall
    f_avg    (precision + recall) / 2        the paper's F score (r <-> h)
    f_harm   2 p r / (p + r)                 the harmonic variant their analysis scripts also report

MentaLLaMA's score.py calls `bart_scorer.score(generated_text, goldens)` with facebook/bart-large-cnn plus
the ParaBank-tuned `bart_score.pth`: that is hyp_ref (h -> r, "recall") with the ParaBank weights, which is
the number the IMHI papers (and the seed's -3.24 ... -2.73) report.

Differences from the authors' loop, none of which changes a score: all pairs are tokenised at once, sorted
by length and batched by a token budget (less padding, fewer calls); the decoder runs without the model's
own loss; the vocabulary projection is applied only to real target tokens, in chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mentalens.errors import ModelError

DEFAULT_CHECKPOINT = "facebook/bart-large-cnn"
MENTALLAMA_DIRECTION = "hyp_ref"
DIRECTIONS: dict[str, str] = {
    "src_hyp": "faithfulness (s -> h)",
    "ref_hyp": "precision (r -> h)",
    "hyp_ref": "recall (h -> r); MentaLLaMA's reported BARTScore",
    "f_avg": "F score: mean of precision and recall (the paper's F)",
    "f_harm": "harmonic mean of precision and recall",
}


class BARTScorer:
    """Scores text pairs with a BART model: facebook/bart-large-cnn, + ParaBank bart.pth, or any local checkpoint."""

    def __init__(
        self,
        checkpoint: str | Path = DEFAULT_CHECKPOINT,
        *,
        weights: str | Path | None = None,
        device: str | None = None,
        max_length: int = 1024,
        batch_size: int = 32,
        max_tokens: int = 16384,
        lm_chunk: int = 1024,
    ):
        import torch
        from transformers import AutoTokenizer, BartForConditionalGeneration

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.checkpoint, self.weights = str(checkpoint), str(weights) if weights else None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
            self.model = BartForConditionalGeneration.from_pretrained(str(checkpoint), dtype=torch.float32)
        except OSError as exc:
            raise ModelError(
                f"cannot load BART checkpoint {checkpoint!r} ({str(exc).splitlines()[0]}): pass a local folder "
                "with --bartscore DIR, or make facebook/bart-large-cnn reachable"
            ) from None
        if weights:
            self._load_weights(Path(weights).expanduser())
        self.model.eval().to(self.device)
        cfg = self.model.config
        self.pad_id = cfg.pad_token_id
        self.max_length = min(max_length, getattr(cfg, "max_position_embeddings", max_length))
        self.batch_size, self.max_tokens, self.lm_chunk = batch_size, max_tokens, lm_chunk

    def _load_weights(self, path: Path) -> None:
        """The ParaBank-tuned state dict the BARTScore authors publish (bart.pth / bart_score.pth)."""
        import torch

        if not path.is_file():
            raise ModelError(f"{path}: BARTScore weights not found: pass the bart.pth file of the BARTScore authors")
        state = torch.load(path, map_location="cpu", weights_only=True)
        result = self.model.load_state_dict(state, strict=False)
        tied = {"lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
        missing = [k for k in result.missing_keys if k not in tied and k != "final_logits_bias"]
        if missing or result.unexpected_keys:
            raise ModelError(
                f"{path} does not match {self.checkpoint} ({len(missing)} missing, {len(result.unexpected_keys)} "
                f"unexpected keys, e.g. {(missing or result.unexpected_keys)[0]}): use the checkpoint it was tuned from"
            )

    def describe(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "weights": self.weights, "max_length": self.max_length}

    # ------------------------------------------------------------------------------------------- scoring

    def _batches(self, src_ids: list[list[int]], tgt_ids: list[list[int]]) -> list[list[int]]:
        """Indices grouped longest first, each group within batch_size rows and max_tokens padded tokens."""
        order = sorted(range(len(src_ids)), key=lambda i: (len(src_ids[i]) + len(tgt_ids[i]), i), reverse=True)
        batches: list[list[int]] = []
        cur: list[int] = []
        ls = lt = 0
        for i in order:
            ns, nt = max(ls, len(src_ids[i])), max(lt, len(tgt_ids[i]))
            if cur and (len(cur) >= self.batch_size or (len(cur) + 1) * (ns + nt) > self.max_tokens):
                batches.append(cur)
                cur, ns, nt = [], len(src_ids[i]), len(tgt_ids[i])
            cur.append(i)
            ls, lt = ns, nt
        if cur:
            batches.append(cur)
        return batches

    def _pad(self, seqs: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _target_logprob_sums(self, src: Any, src_mask: Any, tgt: Any, tgt_mask: Any) -> Any:
        """Sum over real target tokens of log p(y_t | y_<t, x), per row."""
        import torch
        from transformers.models.bart.modeling_bart import shift_tokens_right

        cfg = self.model.config
        dec_in = shift_tokens_right(tgt, cfg.pad_token_id, cfg.decoder_start_token_id)
        base = getattr(self.model, "model", None)
        real = tgt_mask.bool()
        if base is not None and hasattr(self.model, "lm_head"):
            hidden = base(input_ids=src, attention_mask=src_mask, decoder_input_ids=dec_in, use_cache=False)[0]
            h = hidden[real]  # [N, d]: only real target positions reach the vocabulary projection
            y = tgt[real]
            bias = getattr(self.model, "final_logits_bias", None)
            token_lp = torch.empty(h.shape[0], dtype=torch.float32, device=h.device)
            for s in range(0, h.shape[0], self.lm_chunk):
                logits = self.model.lm_head(h[s : s + self.lm_chunk]).float()
                if bias is not None:
                    logits = logits + bias[0].float()
                token_lp[s : s + self.lm_chunk] = logits.gather(1, y[s : s + self.lm_chunk, None])[
                    :, 0
                ] - logits.logsumexp(-1)
        else:  # any other seq2seq head: the full logits
            logits = self.model(
                input_ids=src, attention_mask=src_mask, decoder_input_ids=dec_in, use_cache=False
            ).logits
            token_lp = logits.float().log_softmax(-1).gather(2, tgt[..., None])[..., 0][real]
        row = torch.arange(tgt.shape[0], device=tgt.device)[:, None].expand_as(tgt)[real]
        return torch.zeros(tgt.shape[0], dtype=torch.float32, device=tgt.device).index_add_(0, row, token_lp)

    def score(self, srcs: Sequence[str], tgts: Sequence[str], progress: Any = None) -> list[float]:
        """BARTScore(src -> tgt) per pair: mean log-likelihood of tgt's tokens given src (higher is better)."""
        import torch

        if len(srcs) != len(tgts):
            raise ValueError(f"{len(srcs)} sources for {len(tgts)} targets")
        if not srcs:
            return []
        enc = dict(max_length=self.max_length, truncation=True, padding=False)
        src_ids = self.tokenizer([str(s) for s in srcs], **enc)["input_ids"]
        tgt_ids = self.tokenizer([str(t) for t in tgts], **enc)["input_ids"]
        scores = [0.0] * len(srcs)
        with torch.inference_mode():
            for batch in self._batches(src_ids, tgt_ids):
                src, src_mask = self._pad([src_ids[i] for i in batch])
                tgt, tgt_mask = self._pad([tgt_ids[i] for i in batch])
                sums = self._target_logprob_sums(src, src_mask, tgt, tgt_mask)
                means = (sums / tgt_mask.sum(dim=1)).tolist()
                for i, v in zip(batch, means, strict=True):
                    scores[i] = float(v)
                if progress is not None:
                    progress(len(batch))
        return scores

    def directions(
        self,
        hyps: Sequence[str],
        refs: Sequence[str],
        srcs: Sequence[str] | None = None,
        which: Sequence[str] = ("hyp_ref", "ref_hyp", "f_avg", "f_harm", "src_hyp"),
        progress: Any = None,
    ) -> dict[str, list[float]]:
        """Per-pair scores for the requested directions (src_hyp only when srcs are given)."""
        unknown = [w for w in which if w not in DIRECTIONS]
        if unknown:
            from mentalens.errors import UnknownNameError

            raise UnknownNameError("BARTScore direction", unknown[0], DIRECTIONS)
        out: dict[str, list[float]] = {}
        need_pr = any(w in which for w in ("ref_hyp", "f_avg", "f_harm"))
        if "hyp_ref" in which or need_pr:
            out["hyp_ref"] = self.score(hyps, refs, progress)
        if need_pr:
            out["ref_hyp"] = self.score(refs, hyps, progress)
            p, r = out["ref_hyp"], out["hyp_ref"]
            if "f_avg" in which:
                out["f_avg"] = [(a + b) / 2 for a, b in zip(p, r, strict=True)]
            if "f_harm" in which:
                out["f_harm"] = [2 * a * b / (a + b) if (a + b) != 0 else 0.0 for a, b in zip(p, r, strict=True)]
        if "src_hyp" in which and srcs is not None:
            out["src_hyp"] = self.score(srcs, hyps, progress)
        return {k: out[k] for k in which if k in out}


__all__ = ["DEFAULT_CHECKPOINT", "DIRECTIONS", "MENTALLAMA_DIRECTION", "BARTScorer"]
