"""mentalens: understand what people write about their mental health, and support them safely.

One package, one folder per capability (data, analyze, llm, finetune, proxy, evaluate, safety, counsel,
server) and a thin CLI on top. Importing the package is cheap: heavy libraries (torch, transformers) load
only inside the capability that needs them.
"""

from mentalens.errors import MentalensError

__version__ = "0.1.0"

__all__ = ["MentalensError", "__version__"]
