"""The IMHI evaluation harness: any Backend -> answers -> labels and metrics -> report.

    run_answers(backend, AnswerConfig(...), out_dir)   generation, batched and resumable (MentaLLaMA layout)
    score_run(out_dir, ScoreConfig(...))               correctness (weighted F1 + bootstrap CI), ROUGE,
                                                       BARTScore, BERTScore -> scores.json
    write_report(out_dir)                              report.md + self-contained report.html

Heavy libraries (torch, transformers, sklearn, matplotlib) are imported only by the functions that need them.
"""

from mentalens.evaluate.backends import BackendOptions, build_backend
from mentalens.evaluate.bartscore import BARTScorer
from mentalens.evaluate.correctness import Correctness, LabelledRow, correctness
from mentalens.evaluate.report import write_report
from mentalens.evaluate.runner import AnswerConfig, RunSummary, load_sets, run_answers
from mentalens.evaluate.sampling import stratified_sample
from mentalens.evaluate.score import ScoreConfig, load_run, load_scores, score_run

__all__ = [
    "AnswerConfig",
    "BARTScorer",
    "BackendOptions",
    "Correctness",
    "LabelledRow",
    "RunSummary",
    "ScoreConfig",
    "build_backend",
    "correctness",
    "load_run",
    "load_scores",
    "load_sets",
    "run_answers",
    "score_run",
    "stratified_sample",
    "write_report",
]
