"""What an explainer may call: the model, batched and counted against its budget, on one torch thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator
import numpy as np
import torch


class BudgetExceeded(RuntimeError):
    """Raised when an explainer asks the model for more queries than its budget allows."""


@contextmanager
def one_torch_thread() -> Iterator[int]:
    """Run the body with one torch thread; yields the thread count there was before."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def forward_batched(module: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor | np.ndarray,
                    batch_size: int, device: str | torch.device = "cpu",
                    threads: int | None = None) -> torch.Tensor:
    """``module`` applied to ``x`` ``(N, ...)`` in batches under ``torch.inference_mode``.

    On a CPU every batch is computed on one torch thread, and up to ``threads`` batches at once
    (default: torch's thread count). A float32 convolution's rounding depends on how many
    threads share it; computed this way, the same batch gives the same bits in a process with
    one thread (a worker of ``--executor processes``) and in one with many, so every executor
    writes the same ``metrics.csv``. The batches are ``batch_size`` whatever ``threads`` is.

    Returns
    -------
    torch.Tensor, shape (N, ...), float32 on the CPU (empty when N = 0)
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    starts = list(range(0, x.shape[0], batch_size))
    if not starts:
        return torch.empty(0)
    if torch.device(device).type != "cpu":
        with torch.inference_mode():
            return torch.cat([module(x[i : i + batch_size].to(device)).float().cpu() for i in starts])

    def one(i: int) -> torch.Tensor:
        with torch.inference_mode():  # thread-local: each pool thread enters it itself
            return module(x[i : i + batch_size]).float()

    with one_torch_thread() as available:
        n = max(1, min(len(starts), threads or available))
        if n == 1:
            out = [one(i) for i in starts]
        else:
            with ThreadPoolExecutor(n) as pool:
                out = list(pool.map(one, starts))
    return torch.cat(out)


class ModelAccess:
    """Counted, batched access to a task's classifier on the explanation domain.

    Parameters
    ----------
    classify : torch.nn.Module
        Maps a batch of explanation-domain inputs ``(N, *domain_shape)`` to class
        probabilities ``(N, C)``.
    budget : int, optional
        Maximum number of inputs that may be evaluated; ``None`` for no limit.
    batch_size : int
        Batch size used internally by :meth:`predict`.
    device : str
        Torch device the model lives on.
    """

    def __init__(
        self,
        classify: torch.nn.Module,
        budget: int | None = None,
        batch_size: int = 8,
        device: str = "cpu",
    ) -> None:
        self._classify = classify
        self.budget = budget
        self.batch_size = batch_size
        self.device = torch.device(device)
        #: batches computed at once by :meth:`predict` (this process's torch threads)
        self.threads = torch.get_num_threads()
        self.queries = 0

    def _charge(self, n: int) -> None:
        if self.budget is not None and self.queries + n > self.budget:
            raise BudgetExceeded(
                f"explainer asked for {self.queries + n} model queries but its budget is "
                f"{self.budget}; lower its sample count or raise the budget in the suite"
            )
        self.queries += n

    def predict(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Class probabilities for a batch of inputs.

        Parameters
        ----------
        batch : tensor or array, shape (N, *domain_shape)

        Returns
        -------
        torch.Tensor, shape (N, C), on the CPU
        """
        self._charge(len(batch))
        return forward_batched(self._classify, batch, self.batch_size, self.device, self.threads)

    def differentiable(self) -> torch.nn.Module:
        """The classifier as a differentiable torch module, for white-box explainers.

        Every input passed through the returned module is counted as a query.
        """
        access = self

        class _Counted(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = access._classify

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                access._charge(x.shape[0])
                return self.inner(x.to(access.device))

        return _Counted()
