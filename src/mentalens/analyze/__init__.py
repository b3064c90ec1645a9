"""The embedded analyzer: interpretable analysis of mental-health posts, offline on a CPU.

    from mentalens.analyze import Analyzer, get_analyzer
    az = get_analyzer()                       # the shipped artefact, loaded once per process
    a = az.analyze("I can't get out of bed and nothing feels worth it anymore.")
    a.tasks["DR"].label, a.tasks["DR"].evidence, a.emotions[:3], a.risk_level
    az.answer(post, "Does the poster suffer from depression?")   # "<IMHI label sentence> Reasoning: ..."

One all-MiniLM-L6-v2 pass per post (each sentence read on its own) feeds linear heads for every IMHI task
and the 28 GoEmotions labels; evidence is sentence occlusion on the pooled features, and every explanation
is written from the evidence sentences only. The artefact's manifest names how its encoder reads text:
the shipped v2 artefact runs on ONNX Runtime with int8 weights, reads gender words and first names in a
neutral form and was trained with dialect/age counterfactual copies (the issue-10 bias mitigation); older
artefacts name eager PyTorch fp32 and load the same way (docs/analyze.md).
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
