"""The ``local`` executor: every chunk in this process, one after the other."""

from __future__ import annotations

import uuid
from typing import Any, Iterator, Sequence

from explbench.run.executors.base import Executor, Init, Work, run_chunk


class LocalExecutor(Executor):
    """Runs chunks in order in the calling process; ``init`` is called once per :meth:`map_chunks`.

    Parameters
    ----------
    threads : int
        Torch threads for this process (0: leave torch's setting alone).
    """

    name = "local"

    def __init__(self, threads: int = 0) -> None:
        super().__init__(workers=1, threads=threads)
        import torch

        self._threads_before = torch.get_num_threads()

    def close(self) -> None:
        """Give this process back the torch thread count it had (``threads`` set it per chunk)."""
        import torch

        torch.set_num_threads(self._threads_before)
        super().close()

    def map_chunks(self, init: Init, work: Work, chunks: Sequence[Any]) -> Iterator[tuple[int, list]]:
        token = uuid.uuid4().hex
        for i, chunk in enumerate(chunks):
            index, results, info = run_chunk(token, init, work, self.threads, i, chunk)
            self.chunks_run.append(info)
            yield index, results
