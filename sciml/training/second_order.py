"""Second-order optimizers of the shared Trainer: AdaHessian (Yao et al., AAAI 2021) and Sophia (Liu et al.,
ICLR 2024, its Hutchinson variant Sophia-H).

Both precondition the gradient with a Hutchinson estimate of the Hessian diagonal, ``D = z * (H z)`` for a
random probe ``z`` with ``E[z z^T] = I`` (Rademacher or standard normal): the Hessian-vector product ``H z``
is one more backward pass through the graph of the gradient, so the step that refreshes the estimate computes
the gradient with ``create_graph=True`` (:meth:`HessianDiagonalOptimizer.backward_with_hessian`, called by the
Trainer instead of ``loss.backward()`` on those steps only).

* AdaHessian (Algorithm 1 of the paper): ``m`` an EMA of gradients, ``v`` an EMA of ``D_s * D_s`` where
  ``D_s`` is ``D`` averaged over each convolution kernel's spatial block (Eq. 9; other parameters: block of
  one), both bias-corrected; ``theta -= lr * m_hat / (v_hat ** (k / 2) + eps)`` with Hessian power ``k``,
  decoupled weight decay ``theta *= 1 - lr * weight_decay``.
* Sophia (Algorithm 3 of the paper): ``m`` an EMA of gradients, ``h`` an EMA of ``D`` refreshed every
  ``update_period`` steps (the first step included), no bias correction; ``theta *= 1 - lr * weight_decay``,
  then ``theta -= lr * clip(m / max(gamma * h, eps), -1, 1)``.

Why not the classes of ``pytorch_optimizer`` (docs/optimizers.md has the longer answer): its ``AdaHessian``
has no spatial averaging, both refuse complex parameters (neuraloperator's spectral weights), and both draw
probes from the global RNG and take ``H z`` through ``p.grad``, which DDP does not leave differentiable. The
update rules here are tested against theirs where the two agree (real parameters, the same estimate).

What this module adds for the Trainer:

* **Complex parameters** are pairs of real parameters: probes are drawn real on the real and imaginary parts
  (``torch.view_as_real``), ``D`` is taken per part and every update is elementwise on the real view. With
  torch's convention for a real loss ``L`` of ``w = a + ib``, the gradient is ``dL/da + i dL/db``, and the
  vector-Jacobian product of that gradient with a complex ``z = za + i zb`` is ``(H z)_a + i (H z)_b`` in the
  real coordinates ``(a, b)`` (tests/training/test_second_order.py checks this numerically).
* **Seeded probes**: a ``torch.Generator`` seeded from the run's seed draws them, the same on every process,
  and its state is part of :meth:`state_dict`, so a resumed run draws the probes of an uninterrupted one.
* **Gradient accumulation**: one probe per optimizer step, shared by its micro-batches, so the estimate of
  the accumulated loss is the sum of the micro-batches' (``z * (sum_i H_i) z``), exactly as for one batch.
* **DDP**: ``H z`` of each process's loss is local; :func:`average_over_processes` averages the estimates
  (and the gradients, which DDP does not reduce on these steps) like DDP averages gradients.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from sciml.errors import ConfigError
from sciml.training.config import ProbeName, RunConfig
from sciml.training.distributed import DistributedContext, all_reduce_sum

logger = logging.getLogger(__name__)

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def real_view(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as real numbers: a complex tensor's real and imaginary parts along a last axis of 2."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


class HessianDiagonalOptimizer(torch.optim.Optimizer):
    """An optimizer that preconditions with a Hutchinson estimate of the Hessian diagonal.

    Subclasses implement :meth:`_update` (one parameter's step). Each step that refreshes the estimate
    (:meth:`hessian_due`) takes its micro-batches' losses through :meth:`backward_with_hessian`; the
    other steps use an ordinary ``loss.backward()``.

    Args:
        params: parameters or parameter groups.
        defaults: the groups' default options.
        update_period: refresh the estimate every that many steps (the first step included).
        probe: the probes' distribution, ``rademacher`` (+-1) or ``gaussian`` (standard normal).
        seed: seeds the probes' generator.
    """

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        update_period: int,
        probe: ProbeName,
        seed: int,
    ) -> None:
        if not (isinstance(update_period, int) and update_period >= 1):
            raise ConfigError(f"update_period must be an integer >= 1, got {update_period!r}")
        if probe not in ("rademacher", "gaussian"):
            raise ConfigError(f"probe must be rademacher or gaussian, got {probe!r}")
        super().__init__(params, {**defaults, "step": 0})
        self.update_period = update_period
        self.probe = probe
        first = next((p for g in self.param_groups for p in g["params"]), None)
        device = first.device if first is not None else torch.device("cpu")
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self._probes: list[torch.Tensor] | None = None  # this step's probes (real views)
        self._estimate: list[torch.Tensor] | None = None  # this step's D, per parameter (real views)

    # ------------------------------------------------------------------ the estimate
    @property
    def parameters(self) -> list[torch.Tensor]:
        """Every parameter, in group order (the order of probes and estimates)."""
        return [p for group in self.param_groups for p in group["params"]]

    def hessian_due(self) -> bool:
        """Whether the next step refreshes the Hessian estimate (its losses need ``create_graph``)."""
        return self.param_groups[0]["step"] % self.update_period == 0

    def _draw_probes(self) -> list[torch.Tensor]:
        """One probe per parameter, drawn real on its real view (both parts of a complex parameter)."""
        probes = []
        for p in self.parameters:
            shape, dtype = real_view(p).shape, real_view(p).dtype
            if self.probe == "rademacher":
                z = torch.randint(0, 2, shape, generator=self.generator, device=p.device).to(dtype) * 2 - 1
            else:
                z = torch.randn(shape, generator=self.generator, device=p.device, dtype=dtype)
            probes.append(z)
        return probes

    def backward_with_hessian(self, loss: torch.Tensor) -> None:
        """Add ``loss``'s gradient to ``p.grad`` and its Hutchinson estimate ``z * (H z)`` to this step's.

        Call it once per micro-batch of a step that refreshes the estimate (the loss already divided by
        the number of micro-batches, as for ``backward``); the micro-batches of one step share one probe.
        """
        params = self.parameters
        if self._probes is None:
            self._probes = self._draw_probes()
            self._estimate = [torch.zeros_like(z) for z in self._probes]
        trainable = [i for i, p in enumerate(params) if p.requires_grad]
        grads = torch.autograd.grad(
            loss, [params[i] for i in trainable], create_graph=True, allow_unused=True
        )
        curved = [(i, g) for i, g in zip(trainable, grads, strict=True) if g is not None and g.requires_grad]
        if curved:
            vectors = [
                torch.view_as_complex(self._probes[i]) if params[i].is_complex() else self._probes[i]
                for i, _ in curved
            ]
            products = torch.autograd.grad(
                [g for _, g in curved], [params[i] for i, _ in curved], vectors, allow_unused=True
            )
            assert self._estimate is not None
            for (i, _), hz in zip(curved, products, strict=True):
                if hz is not None:
                    self._estimate[i].addcmul_(self._probes[i], real_view(hz))
        for i, g in zip(trainable, grads, strict=True):
            if g is None:
                continue
            p = params[i]
            if p.grad is None:
                p.grad = g.detach()
            else:
                p.grad.add_(g.detach())

    def set_hessian_estimate(self, estimate: Sequence[torch.Tensor]) -> None:
        """Use ``estimate`` (one tensor per parameter, of its shape) as this step's ``D``; tests and callers
        with their own estimator use it instead of :meth:`backward_with_hessian`."""
        params = self.parameters
        if len(estimate) != len(params):
            raise ConfigError(f"set_hessian_estimate: {len(estimate)} tensors for {len(params)} parameters")
        self._estimate = [real_view(d.detach()).clone() for d in estimate]

    @property
    def hessian_estimate(self) -> list[torch.Tensor] | None:
        """This step's ``D`` so far (real views), or ``None`` when the step does not refresh it."""
        return self._estimate

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter with a gradient; a refreshed estimate enters the curvature EMA."""
        if closure is not None:
            raise ConfigError(f"{type(self).__name__}.step takes no closure")
        estimate = self._estimate
        self._probes, self._estimate = None, None
        index = 0
        for group in self.param_groups:
            group["step"] += 1
            for p in group["params"]:
                d = estimate[index] if estimate is not None else None
                index += 1
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ConfigError(f"{type(self).__name__} does not support sparse gradients")
                self._update(p, p.grad, group, d)
        return None

    def _update(
        self, p: torch.Tensor, gradient: torch.Tensor, group: dict[str, Any], estimate: torch.Tensor | None
    ) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state plus the probes' generator state (a resumed run draws the same probes)."""
        state = super().state_dict()
        state["probe_generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the generator too when it holds one)."""
        state_dict = dict(state_dict)
        generator_state = state_dict.pop("probe_generator", None)
        super().load_state_dict(state_dict)
        if generator_state is not None:
            self.generator.set_state(generator_state.to("cpu", torch.uint8))
        self._probes, self._estimate = None, None


class AdaHessian(HessianDiagonalOptimizer):
    """AdaHessian (Yao et al., AAAI 2021): Adam with the spatially averaged Hutchinson diagonal in place of
    the squared gradient (see the module's docstring).

    A parameter group whose ``kernel_dims`` is a tuple of dimensions (a convolution kernel's spatial ones,
    e.g. ``(2, 3)`` for a ``Conv2d`` weight) averages ``D`` over them; ``()`` (the default) does not.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.15,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-4,
        weight_decay: float = 0.0,
        hessian_power: float = 1.0,
        update_period: int = 1,
        probe: ProbeName = "rademacher",
        seed: int = 0,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "hessian_power": hessian_power,
            "kernel_dims": (),
            "hessian_updates": 0,
        }
        super().__init__(params, defaults, update_period=update_period, probe=probe, seed=seed)

    def step(self, closure: Any = None) -> Any:
        """One AdaHessian step (see :meth:`HessianDiagonalOptimizer.step`)."""
        if self._estimate is not None:
            for group in self.param_groups:
                group["hessian_updates"] += 1
        return super().step(closure)

    def _update(
        self, p: torch.Tensor, gradient: torch.Tensor, group: dict[str, Any], estimate: torch.Tensor | None
    ) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if not state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_hessian_diag_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        theta, grad = real_view(p), real_view(gradient)
        m, v = real_view(state["exp_avg"]), real_view(state["exp_hessian_diag_sq"])
        if group["weight_decay"]:
            theta.mul_(1 - group["lr"] * group["weight_decay"])
        m.lerp_(grad, 1 - beta1)
        if estimate is not None:
            if group["kernel_dims"]:
                estimate = estimate.mean(dim=tuple(group["kernel_dims"]), keepdim=True).expand_as(estimate)
            v.mul_(beta2).addcmul_(estimate, estimate, value=1 - beta2)
        updates = group["hessian_updates"]
        if updates == 0:  # no estimate yet (only when a caller skips the first step's): no curvature
            return
        bias1 = 1 - beta1 ** group["step"]
        bias2 = 1 - beta2**updates
        denominator = (v / bias2).pow_(group["hessian_power"] / 2).add_(group["eps"])
        theta.addcdiv_(m, denominator, value=-group["lr"] / bias1)


class Sophia(HessianDiagonalOptimizer):
    """Sophia with Hutchinson estimates (Sophia-H of Liu et al., 2023): the EMA of gradients divided by
    ``max(gamma * h, eps)``, clipped elementwise to ``[-1, 1]`` (see the module's docstring)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: Sequence[float] = (0.96, 0.99),
        gamma: float = 0.01,
        eps: float = 1e-12,
        weight_decay: float = 0.0,
        update_period: int = 10,
        probe: ProbeName = "gaussian",
        seed: int = 0,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "gamma": gamma, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults, update_period=update_period, probe=probe, seed=seed)

    def _update(
        self, p: torch.Tensor, gradient: torch.Tensor, group: dict[str, Any], estimate: torch.Tensor | None
    ) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if not state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        theta, grad = real_view(p), real_view(gradient)
        m, h = real_view(state["exp_avg"]), real_view(state["hessian"])
        m.lerp_(grad, 1 - beta1)
        if estimate is not None:
            h.lerp_(estimate, 1 - beta2)
        if group["weight_decay"]:
            theta.mul_(1 - group["lr"] * group["weight_decay"])
        ratio = m / (group["gamma"] * h).clamp_(min=group["eps"])
        theta.add_(ratio.clamp_(-1.0, 1.0), alpha=-group["lr"])


SECOND_ORDER = ("adahessian", "sophia")
"""The ``optim.name`` values built here."""


def kernel_groups(model: nn.Module, params: list[nn.Parameter]) -> list[dict[str, Any]]:
    """``params`` in two AdaHessian groups: convolution weights whose kernel has more than one point (their
    ``kernel_dims``: the spatial dimensions, AdaHessian's averaging block) and all others."""
    kernels = {}
    for module in model.modules():
        if isinstance(module, CONV_TYPES) and math.prod(module.kernel_size) > 1:
            kernels[id(module.weight)] = tuple(range(2, module.weight.ndim))
    groups: dict[tuple[int, ...], list[nn.Parameter]] = {}
    for p in params:
        groups.setdefault(kernels.get(id(p), ()), []).append(p)
    return [{"params": ps, "kernel_dims": dims} for dims, ps in sorted(groups.items())]


def build_second_order(
    model: nn.Module, params: list[nn.Parameter], config: RunConfig
) -> HessianDiagonalOptimizer:
    """The ``optim.name`` second-order optimizer of a run config (``adahessian`` or ``sophia``) over
    ``params`` of ``model``, its probes seeded by ``train.seed``; refuses what it cannot train with."""
    o, t = config.optim, config.train
    if t.compile:
        raise ConfigError(
            f"optim.name: {o.name} takes Hessian-vector products (a double backward), which torch.compile "
            f"does not support; set train.compile: false"
        )
    if t.amp == "fp16":
        raise ConfigError(
            f"optim.name: {o.name} with train.amp: fp16 would scale the Hessian estimate by the loss scale; "
            f"use train.amp: bf16 or none"
        )
    if o.name == "adahessian":
        a = o.adahessian
        groups = kernel_groups(model, params) if a.spatial_average else params
        return AdaHessian(
            groups,
            lr=o.lr,
            betas=tuple(o.betas),
            eps=a.eps,
            weight_decay=o.weight_decay,
            hessian_power=a.hessian_power,
            update_period=a.update_period,
            probe=a.probe,
            seed=t.seed,
        )
    s = o.sophia
    return Sophia(
        params,
        lr=o.lr,
        betas=tuple(s.betas),
        gamma=s.gamma,
        eps=s.eps,
        weight_decay=o.weight_decay,
        update_period=s.update_period,
        probe=s.probe,
        seed=t.seed,
    )


def average_over_processes(optimizer: HessianDiagonalOptimizer, context: DistributedContext) -> None:
    """Average the gradients and this step's Hessian estimate over the processes (one all-reduce).

    On the steps that refresh the estimate the Trainer runs the model outside DDP's gradient sync (DDP cannot
    reduce a gradient taken with ``create_graph``), so both are averaged here, like DDP averages gradients:
    every process then holds what one process would compute on the whole batch.
    """
    if not context.enabled:
        return
    params = [p for p in optimizer.parameters if p.requires_grad]
    grads = [real_view(p.grad) if p.grad is not None else torch.zeros_like(real_view(p)) for p in params]
    estimate = optimizer.hessian_estimate or []
    tensors = [*grads, *estimate]
    flat = torch.cat([t.reshape(-1) for t in tensors])
    all_reduce_sum(flat, context).div_(context.world_size)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
    for p, g in zip(params, grads, strict=True):
        if p.grad is None:
            p.grad = torch.view_as_complex(g) if p.is_complex() else g
