"""A SpeechBrain ``Checkpointer`` whose checkpoints are never half-written.

SpeechBrain writes ``CKPT.yaml`` before the parameter files, so a run killed during
a save leaves a folder that looks like a complete checkpoint; recovery then picks it
and fails to load it (a missing or truncated ``.ckpt``), and the run cannot resume.
``AtomicCheckpointer`` writes each checkpoint into a staging folder that recovery
never lists (``<checkpoints_dir>/.partial/``) and renames it into place only when
every file is written: a checkpoint is either complete or absent, and a killed run
resumes from the last complete one. A staging folder left by a killed save is
removed at the next save. Use it in a YAML in place of SpeechBrain's::

    checkpointer: !new:speechbrain_ext.checkpoints.AtomicCheckpointer
        checkpoints_dir: !ref <save_folder>
        recoverables: ...

Example
-------
>>> import tempfile, torch
>>> folder = tempfile.mkdtemp()
>>> model = torch.nn.Linear(2, 2)
>>> checkpointer = AtomicCheckpointer(folder, recoverables={"model": model})
>>> ckpt = checkpointer.save_checkpoint(meta={"epoch": 1})
>>> sorted(p.name for p in ckpt.path.iterdir()), ckpt.path.parent == checkpointer.checkpoints_dir
(['CKPT.yaml', 'model.ckpt'], True)
>>> [c.meta["epoch"] for c in checkpointer.list_checkpoints()]
[1]
"""

import logging
import os
import shutil

from speechbrain.utils.checkpoints import CKPT_PREFIX, Checkpoint, Checkpointer
from speechbrain.utils.distributed import ddp_barrier, ddp_broadcast, if_main_process

STAGING = ".partial"


class AtomicCheckpointer(Checkpointer):
    """``Checkpointer`` that writes a checkpoint in full before it becomes visible.

    Arguments
    ---------
    *args, **kwargs
        As SpeechBrain's ``Checkpointer`` (``checkpoints_dir``, ``recoverables``, ...).
    """

    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None,
                        verbosity=logging.INFO):
        """Save as ``Checkpointer.save_checkpoint`` does, into a staging folder first,
        then rename the complete checkpoint into ``checkpoints_dir``."""
        final_dir = None
        staging = self.checkpoints_dir / STAGING
        if if_main_process():
            shutil.rmtree(staging, ignore_errors=True)  # what a killed save left behind
            final_dir = (self._new_checkpoint_dirpath() if name is None
                         else self._custom_checkpoint_dirpath(name))
        final_dir = ddp_broadcast(final_dir, src=0)
        checkpoints_dir = self.checkpoints_dir
        self.checkpoints_dir = staging  # the parent class writes under it
        try:
            staged = super().save_checkpoint(
                meta=meta, end_of_epoch=end_of_epoch,
                name=final_dir.name[len(CKPT_PREFIX) + 1:], verbosity=verbosity)
        finally:
            self.checkpoints_dir = checkpoints_dir
        ddp_barrier()  # every process has written its files
        checkpoint = None
        if if_main_process():
            if final_dir.exists():  # a custom name saved again: replace the old one
                shutil.rmtree(final_dir)
            os.replace(staged.path, final_dir)  # atomic: the checkpoint appears complete
            checkpoint = Checkpoint(final_dir, staged.meta,
                                    {k: final_dir / p.name for k, p in staged.paramfiles.items()})
        # Every process lists the new checkpoint before deleting old ones: processes that
        # see different checkpoints make different collective calls, and hang.
        ddp_barrier()
        return checkpoint
