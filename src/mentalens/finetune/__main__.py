"""`python -m mentalens.finetune CONFIG.yaml [key=value ...]`: the entry point for torchrun / accelerate.

    torchrun --nproc_per_node 2 -m mentalens.finetune configs/finetune/smollm2-imhi.yaml
    accelerate launch --config_file configs/finetune/accelerate-fsdp.yaml -m mentalens.finetune CONFIG.yaml

Every rank runs the same command; only rank 0 shows progress and writes the outputs.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    from mentalens.cli import main as cli_main

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = list(sys.argv[1:] if argv is None else argv)
    cli_main(["finetune", "run", *args])


if __name__ == "__main__":
    main()
