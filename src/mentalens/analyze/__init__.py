"""The embedded analyzer: interpretable analysis of mental-health posts, offline on a CPU.

    from mentalens.analyze import Analyzer, get_analyzer
    az = get_analyzer()                       # the shipped artefact, loaded once per process
    a = az.analyze("I can't get out of bed and nothing feels worth it anymore.")
    a.tasks["DR"].label, a.tasks["DR"].evidence, a.emotions[:3], a.risk_level
    az.answer(post, "Does the poster suffer from depression?")   # "<IMHI label sentence> Reasoning: ..."

One all-MiniLM-L6-v2 pass per post (each sentence read on its own) feeds linear heads for every IMHI task
and the 28 GoEmotions labels; evidence is sentence occlusion on the pooled features, and every explanation
is written from the evidence sentences only. The artefact's manifest names how its encoder reads text:
eager PyTorch fp32 for the shipped v1 artefact; `mentalens train analyzer` now builds v2 (ONNX Runtime with
int8 weights, gender words and first names read in a neutral form, dialect/age counterfactual copies in
training: the issue-10 bias mitigation). v2 is not shipped yet: see docs/analyze.md for why.
Importing this package does not import torch; loading an Analyzer does.
"""

from mentalens.analyze.analyzer import Analyzer, default_artefact, get_analyzer, head_key
from mentalens.analyze.types import NOT_A_DIAGNOSIS, Analysis, Emotion, Evidence, TaskResult

__all__ = [
    "NOT_A_DIAGNOSIS",
    "Analysis",
    "Analyzer",
    "Emotion",
    "Evidence",
    "TaskResult",
    "default_artefact",
    "get_analyzer",
    "head_key",
]
