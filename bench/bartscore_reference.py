"""Reference BARTScore loop: a line-for-line port of `BARTScorer.score` from the BARTScore authors.

Source: neulab/BARTScore, bart_score.py (Yuan, Neubig & Liu, "BARTScore: Evaluating Generated Text as Text
Generation", NeurIPS 2021), MIT licence. Kept only in bench/ to check that mentalens' scorer gives the same
numbers and to measure its speed against the original (batch 4, unsorted, labels passed to the model).
Changes: the model/tokenizer are passed in (so both scorers share them), and errors propagate instead of exit(0).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class ReferenceBARTScorer:
    def __init__(self, model, tokenizer, device="cpu", max_length=1024):
        # Set up model
        self.device = device
        self.max_length = max_length
        self.tokenizer = tokenizer
        self.model = model
        self.model.eval()
        self.model.to(device)

        # Set up loss
        self.loss_fct = nn.NLLLoss(reduction="none", ignore_index=self.model.config.pad_token_id)
        self.lsm = nn.LogSoftmax(dim=1)

    def score(self, srcs, tgts, batch_size=4):
        """Score a batch of examples"""
        score_list = []
        for i in range(0, len(srcs), batch_size):
            src_list = srcs[i : i + batch_size]
            tgt_list = tgts[i : i + batch_size]
            with torch.no_grad():
                encoded_src = self.tokenizer(
                    src_list, max_length=self.max_length, truncation=True, padding=True, return_tensors="pt"
                )
                encoded_tgt = self.tokenizer(
                    tgt_list, max_length=self.max_length, truncation=True, padding=True, return_tensors="pt"
                )
                src_tokens = encoded_src["input_ids"].to(self.device)
                src_mask = encoded_src["attention_mask"].to(self.device)

                tgt_tokens = encoded_tgt["input_ids"].to(self.device)
                tgt_mask = encoded_tgt["attention_mask"]
                tgt_len = tgt_mask.sum(dim=1).to(self.device)

                output = self.model(input_ids=src_tokens, attention_mask=src_mask, labels=tgt_tokens)
                logits = output.logits.view(-1, self.model.config.vocab_size)
                loss = self.loss_fct(self.lsm(logits), tgt_tokens.view(-1))
                loss = loss.view(tgt_tokens.shape[0], -1)
                loss = loss.sum(dim=1) / tgt_len
                curr_score_list = [-x.item() for x in loss]
                score_list += curr_score_list
        return score_list
