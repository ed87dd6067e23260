"""One DDP rank of one job: `torch.distributed.run ... -m binary_encoding.run.ddp_worker CONFIG.yaml`.

Started by `binary_encoding.run.job.launch_ddp`, never by hand. Lightning reads the rank and world size
from the environment that torch.distributed.run sets, so it does not launch processes itself.
"""

import sys
from pathlib import Path

from omegaconf import OmegaConf

from .. import ranks
from ..record import files
from . import console
from .fit import train


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m torch.distributed.run ... -m binary_encoding.run.ddp_worker CONFIG.yaml")
    cfg = OmegaConf.load(args[0])
    if ranks.is_rank0():  # the ranks are no Hydra jobs: rank 0 logs as Hydra's job logging does
        console.log_to(Path(cfg.output_dir) / files.LOG)
    train(cfg)
    import torch.distributed as dist

    if dist.is_initialized():
        # the ranks leave together, once rank 0 has written the record and closed its W&B run: a rank that
        # tore its process group down at exit while rank 0 was still closing its run aborted now and then
        # ("terminate called without an active exception", measured: 1 DDP job in 6, and 1 sweep test in 3)
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
