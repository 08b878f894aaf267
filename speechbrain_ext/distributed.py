"""Data-parallel training under ``torchrun`` on CPU as well as on GPU.

Under ``torchrun`` SpeechBrain 1.x wraps each trained module of a Brain in
``DistributedDataParallel`` and first converts its batch norms to ``SyncBatchNorm``,
which PyTorch runs on CUDA only: on CPU (``--distributed_backend=gloo``) every recipe
with a batch norm stops with "SyncBatchNorm layers only work with GPU modules".
``DDPBrain`` keeps SpeechBrain's wrapping on GPU and, on CPU, wraps without the
conversion: each process normalises with its own batch's statistics, and DDP copies
rank 0's running statistics to the other processes at every forward
(``broadcast_buffers``), so all ranks evaluate, and rank 0 saves, one model.

A process that ends while another still works (rank 0 exporting a model) leaves its
gloo process group first, at exit: it drops its DDP wrappers (whose reducers hold the
process group, so that ``destroy_process_group`` alone does not free it) and then
destroys the group, so that gloo's threads stop while the interpreter is still whole.
Left to the interpreter's teardown, a gloo thread that must take the GIL is ended by
Python, which aborts the process ("terminate called without an active exception") and
torchrun reports the run as failed.

``--debug`` under ``torchrun`` needs ``--debug_persistently``: otherwise SpeechBrain
gives every process its own temporary checkpoint folder, rank 0's checkpoints are
invisible to the others and the run hangs at the test; ``DDPBrain`` stops with that
advice instead.

Example
-------
>>> import os, tempfile, torch
>>> from speechbrain.utils.distributed import ddp_init_group
>>> env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
...        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531"}
>>> os.environ.update(env)  # what torchrun sets, for one process
>>> ddp_init_group({"distributed_backend": "gloo"})
>>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
>>> brain = DDPBrain(modules={"model": model}, run_opts={"distributed_backend": "gloo"})
>>> brain._wrap_distributed()
>>> wrapped = brain.modules["model"]
>>> type(wrapped).__name__, type(wrapped.module[1]).__name__
('DistributedDataParallel', 'BatchNorm1d')
>>> wrapped(torch.randn(5, 3)).shape
torch.Size([5, 4])
>>> torch.distributed.destroy_process_group()
>>> for key in env:
...     del os.environ[key]
"""

import atexit
import gc
import weakref

import speechbrain as sb
import torch
from torch.nn.parallel import DistributedDataParallel


class DDPBrain(sb.Brain):
    """``speechbrain.Brain`` whose distributed wrapping also runs on CPU (gloo).

    Arguments
    ---------
    *args, **kwargs
        As ``speechbrain.Brain`` (``modules``, ``opt_class``, ``hparams``,
        ``run_opts``, ``checkpointer``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.distributed_launch and self.debug and not self.debug_persistently:
            raise ValueError("--debug under torchrun needs --debug_persistently: every "
                             "process would checkpoint into its own temporary folder")
        if self.distributed_launch:
            if not _DISTRIBUTED_BRAINS:
                atexit.register(_leave_process_group)
            _DISTRIBUTED_BRAINS.add(self)

    def _wrap_distributed(self):
        """SpeechBrain's wrapping on GPU; on CPU, DDP without ``SyncBatchNorm`` (CUDA only)."""
        if not self.distributed_launch or torch.device(self.device).type == "cuda":
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, device_ids=None, find_unused_parameters=self.find_unused_parameters)


_DISTRIBUTED_BRAINS = weakref.WeakSet()


def _leave_process_group():
    for brain in list(_DISTRIBUTED_BRAINS):
        for name, module in list(brain.modules.items()):
            if isinstance(module, DistributedDataParallel):
                brain.modules[name] = module.module
    gc.collect()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    gc.collect()
