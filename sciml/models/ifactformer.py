"""The implicit factorized transformer (IFactFormer) on 2-D and 3-D grids, parallel (-m) or chained (-o).

Yang, Wang, Wang, "Implicit factorized transformer approach to fast prediction of turbulent channel flows",
Sci. China Phys. Mech. Astron. (2025), arXiv:2412.18840; built on the factorized attention of Li, Shu,
Barati Farimani, "Scalable Transformer for PDE Surrogate Modeling" (FactFormer, NeurIPS 2023).

The input frames are stacked as channels, ``x [B, t_in * C, *grid]``, lifted point-wise to a width ``d``
(``u_0 = W_2 GELU(W_1 x)``), and one factorized attention layer ``F`` with its weights shared is iterated
``L = n_layers`` times with the paper's scaled update

    u_{l+1} = u_l + F(u_l) / L,        l = 0 .. L - 1,

(an explicit Euler discretization of ``du/ds = F(u)`` on ``s in [0, 1]``: the "implicit" network of the
IFNO line of work, whose depth adds no parameters). The output ``t_out`` frames are a point-wise projection
``W_4 GELU(W_3 u_L)``.

The layer ``F`` (FactFormer's axial factorized kernel integral), with ``h = LayerNorm(u)``:

1. values ``v = W_v h`` (``heads`` heads of width ``dim_head``), features ``g = W_g h``;
2. for each axis ``a``, the learnable projection onto a function of that axis alone,
   ``g_a(x_a) = MLP(LayerNorm(mean_{other axes} W_a g))`` (``[B, n_a, d]``);
3. per head an axial kernel ``kappa_a(x_a, xi_a) = q_a(x_a) . R(x_a - xi_a) k_a(xi_a) / n_a`` with
   ``q_a = W_q g_a``, ``k_a = W_k g_a`` (width ``dim_head * kernel_multiplier``), no softmax, ``R`` the
   rotary encoding of the relative position (``1 / n_a`` the quadrature weight of the integral
   ``int kappa_a(x_a, xi) v(..., xi, ...) dxi / L_a``);
4. the factorized kernel integral, parallel (IFactFormer-m) or chained (IFactFormer-o):

       m:  z = concat_a (K_a v)              (each K_a acting on axis a only),
       o:  z = K_1 K_2 ... K_n v             (the separable n-D kernel kappa_1 kappa_2 ... kappa_n);

   concatenating and then applying a linear map is summing one linear map per axis, so -m sums axial
   attentions computed from the same input, while -o chains them;
5. ``F(u) = W_o2 GELU(W_o1 InstanceNorm(z))`` (statistics over the grid, per sample and channel).

On periodic axes the rotary frequencies are whole wavenumbers ``2 pi j / L_a``, so ``R(x_a - xi_a)`` is
periodic and every step above commutes with a periodic shift of the grid: the model is exactly
shift-equivariant there. The paper's absolute position features (random Fourier features of the
coordinates added to ``u_0``) break that symmetry; ``absolute_positions`` adds them (default: only when an
axis is walled, like the channel flow's wall-normal axis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciml.errors import ConfigError
from sciml.models.registry import ModelContext, register_model

VARIANTS = ("parallel", "chained")
"""``parallel``: IFactFormer-m (axial attentions summed); ``chained``: IFactFormer-o (applied in turn)."""


def factorized_kernel_integral(kernels: Sequence[Tensor], v: Tensor, variant: str) -> Tensor:
    """Apply axial kernels ``K_a [B, H, n_a, n_a]`` to values ``v [B, H, n_1, ..., n_m, c]``.

    ``parallel`` returns ``concat_a (K_a v)`` on the last axis (``[..., m * c]``), where
    ``(K_a v)(.., x_a, ..) = sum_xi K_a[x_a, xi] v(.., xi, ..)``; ``chained`` returns
    ``K_1 K_2 ... K_m v`` (``[..., c]``; the axial maps commute, as each acts on its own axis).
    """
    if variant not in VARIANTS:
        raise ConfigError(f"ifactformer: variant {variant!r} is not one of {', '.join(VARIANTS)}")
    m = v.ndim - 3
    if len(kernels) != m:
        raise ConfigError(f"ifactformer: {len(kernels)} axial kernels for {m} spatial axes")
    outputs = []
    current = v
    for axis, kernel in enumerate(kernels):
        source = v if variant == "parallel" else current
        moved = source.movedim(2 + axis, -2)  # [B, H, ..., n_a, c]
        lead = moved.shape[2:-2]
        flat = moved.reshape(moved.shape[0], moved.shape[1], -1, *moved.shape[-2:])
        mixed = torch.einsum("bhij,bhpjc->bhpic", kernel, flat).reshape(
            *moved.shape[:2], *lead, *moved.shape[-2:]
        )
        result = mixed.movedim(-2, 2 + axis)
        if variant == "parallel":
            outputs.append(result)
        else:
            current = result
    return torch.cat(outputs, dim=-1) if variant == "parallel" else current


def rotary_frequencies(n_pairs: int, length: float, periodic: bool) -> Tensor:
    """Angular frequencies of the rotary encoding of one axis: ``2 pi j / L`` (periodic: whole wavenumbers,
    so the encoding is periodic in the box) or ``pi j / L`` (walled), ``j = 1 .. n_pairs``."""
    j = torch.arange(1, n_pairs + 1, dtype=torch.float64)
    return (2.0 if periodic else 1.0) * math.pi * j / length


def apply_rotary(q: Tensor, angles: Tensor) -> Tensor:
    """Rotate the pairs ``(q_j, q_{j + P})`` of ``q [..., n, 2P]`` by ``angles [n, P]`` (Su et al., RoFormer):
    the dot product of two rotated vectors depends on the positions only through their difference."""
    p = angles.shape[-1]
    cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
    first, second, rest = q[..., :p], q[..., p : 2 * p], q[..., 2 * p :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos, rest], dim=-1)


def instance_norm(z: Tensor, spatial: tuple[int, ...], eps: float = 1e-5) -> Tensor:
    """``(z - mean) / sqrt(var + eps)``, the statistics over the ``spatial`` axes (per sample, channel)."""
    mean = z.mean(dim=spatial, keepdim=True)
    var = (z - mean).square().mean(dim=spatial, keepdim=True)
    return (z - mean) * torch.rsqrt(var + eps)


class AxialProjection(nn.Module):
    """``g_a = MLP(LayerNorm(mean over the other axes of W g))``: a function of axis ``a`` alone."""

    def __init__(self, dim: int, latent: int) -> None:
        super().__init__()
        self.to_in = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, latent))

    def forward(self, g: Tensor, axis: int) -> Tensor:
        """``g [B, *grid, d]`` -> ``[B, n_axis, latent]``."""
        m = g.ndim - 2
        others = tuple(1 + a for a in range(m) if a != axis)
        pooled = g.mean(dim=others) if others else g  # mean(W g) = W mean(g): the linear map after the mean
        return self.mlp(self.norm(self.to_in(pooled)))


class FactorizedAttention(nn.Module):
    """One IFactFormer layer ``F(u)`` (module docstring, steps 1-5) on ``u [B, *grid, d]``."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        kernel_multiplier: int,
        lengths: Sequence[float],
        periodic: Sequence[bool],
        variant: str,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"ifactformer: variant {variant!r} is not one of {', '.join(VARIANTS)}")
        self.variant, self.heads, self.dim_head = variant, heads, dim_head
        self.n_axes = len(lengths)
        qk = dim_head * kernel_multiplier
        self.qk = qk
        self.norm = nn.LayerNorm(dim)
        self.to_v = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_g = nn.Linear(dim, dim, bias=False)
        self.projections = nn.ModuleList(AxialProjection(dim, dim) for _ in range(self.n_axes))
        self.to_q = nn.ModuleList(nn.Linear(dim, heads * qk, bias=False) for _ in range(self.n_axes))
        self.to_k = nn.ModuleList(nn.Linear(dim, heads * qk, bias=False) for _ in range(self.n_axes))
        for layer in (*self.to_q, *self.to_k):  # small kernels at the start (FactFormer's initial gain 0.02)
            nn.init.xavier_uniform_(layer.weight, gain=0.02)
        self.lengths = tuple(float(v) for v in lengths)
        self.periodic = tuple(bool(p) for p in periodic)
        mixed = heads * dim_head * (self.n_axes if variant == "parallel" else 1)
        self.out = nn.Sequential(
            nn.Linear(mixed, dim, bias=False), nn.GELU(), nn.Linear(dim, dim, bias=False)
        )

    def kernels(self, g: Tensor) -> list[Tensor]:
        """The axial kernels ``K_a [B, heads, n_a, n_a]`` (quadrature weight ``1 / n_a`` included)."""
        out = []
        for axis in range(self.n_axes):
            g_a = self.projections[axis](g, axis)  # [B, n, d]
            n = g_a.shape[1]
            q = self.to_q[axis](g_a).unflatten(-1, (self.heads, self.qk)).transpose(1, 2)  # [B, H, n, qk]
            k = self.to_k[axis](g_a).unflatten(-1, (self.heads, self.qk)).transpose(1, 2)
            x = torch.arange(n, dtype=torch.float64, device=g.device) * (self.lengths[axis] / n)
            freqs = rotary_frequencies(self.qk // 2, self.lengths[axis], self.periodic[axis]).to(g.device)
            angles = x[:, None] * freqs[None, :]
            q, k = apply_rotary(q, angles), apply_rotary(k, angles)
            out.append(torch.einsum("bhid,bhjd->bhij", q, k) / n)
        return out

    def forward(self, u: Tensor) -> Tensor:
        """``F(u)`` for ``u [B, *grid, d]``."""
        h = self.norm(u)
        v = self.to_v(h).unflatten(-1, (self.heads, self.dim_head)).movedim(-2, 1)  # [B, H, *grid, c]
        z = factorized_kernel_integral(self.kernels(self.to_g(h)), v, self.variant)
        z = z.movedim(1, -2).flatten(-2)  # [B, *grid, H * c (* m)]
        z = instance_norm(z, tuple(range(1, 1 + self.n_axes)))
        return self.out(z)


class IFactFormer(nn.Module):
    """Lift, ``n_layers`` iterations of one shared :class:`FactorizedAttention`, project (module docstring).

    Maps ``x [B, in_channels, *grid]`` to ``[B, out_channels, *grid]`` on a 2-D or 3-D grid.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        lengths: Sequence[float],
        periodic: Sequence[bool],
        dim: int = 64,
        heads: int = 4,
        dim_head: int = 16,
        kernel_multiplier: int = 3,
        n_layers: int = 10,
        variant: str = "parallel",
        absolute_positions: bool = False,
        position_features: int = 16,
        position_scale: float = 8.0,
    ) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.lengths = tuple(float(v) for v in lengths)
        self.lift = nn.Sequential(nn.Linear(in_channels, dim), nn.GELU(), nn.Linear(dim, dim))
        self.layer = FactorizedAttention(dim, heads, dim_head, kernel_multiplier, lengths, periodic, variant)
        self.project = nn.Sequential(nn.Linear(dim, dim // 2), nn.GELU(), nn.Linear(dim // 2, out_channels))
        self.positions: nn.Module | None = None
        if absolute_positions:  # fixed Gaussian random Fourier features of x / L, then a linear map
            basis = torch.randn(len(self.lengths), position_features) * position_scale
            self.register_buffer("position_basis", basis)
            self.positions = nn.Linear(2 * position_features, dim)

    def position_encoding(self, grid: Sequence[int], like: Tensor) -> Tensor:
        """``W [cos(2 pi x B), sin(2 pi x B)]`` at every grid point, ``[*grid, d]`` (x scaled to [0, 1))."""
        assert self.positions is not None
        axes = [torch.arange(n, device=like.device, dtype=like.dtype) / n for n in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
        basis = self.get_buffer("position_basis")
        phase = 2 * math.pi * coords @ basis.to(like.dtype)
        return self.positions(torch.cat([phase.cos(), phase.sin()], dim=-1))

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C_in, *grid]`` -> ``[B, C_out, *grid]``."""
        u = self.lift(x.movedim(1, -1))
        if self.positions is not None:
            u = u + self.position_encoding(x.shape[2:], u)
        for _ in range(self.n_layers):
            u = u + self.layer(u) / self.n_layers
        return self.project(u).movedim(-1, 1)


@register_model("ifactformer")
def build_ifactformer(
    context: ModelContext,
    *,
    variant: str = "parallel",
    dim: int = 64,
    heads: int = 4,
    dim_head: int = 16,
    kernel_multiplier: int = 3,
    n_layers: int = 10,
    absolute_positions: bool | None = None,
) -> nn.Module:
    """IFactFormer-m (``variant: parallel``) or IFactFormer-o (``variant: chained``), Yang et al. 2025.

    ``dim`` d the width, ``heads`` x ``dim_head`` the values' width, ``kernel_multiplier`` the width of
    queries and keys relative to ``dim_head`` (even product), ``n_layers`` L the iterations of the one shared
    layer (``u <- u + F(u) / L``), ``absolute_positions`` the paper's coordinate features (``None``: on
    when an axis is walled; off keeps the exact shift equivariance on periodic boxes).
    """
    if context.n_dims not in (2, 3):
        raise ConfigError(f"model 'ifactformer': needs a 2-D or 3-D grid, got {context.n_dims}-D")
    if variant not in VARIANTS:
        raise ConfigError(f"model 'ifactformer': variant {variant!r} is not one of {', '.join(VARIANTS)}")
    for key, value in (("dim", dim), ("heads", heads), ("dim_head", dim_head), ("n_layers", n_layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model 'ifactformer': {key} must be a positive integer, got {value!r}")
    if (dim_head * kernel_multiplier) % 2:
        raise ConfigError(
            f"model 'ifactformer': dim_head * kernel_multiplier = {dim_head * kernel_multiplier} must be "
            f"even (rotary encoding rotates pairs)"
        )
    lengths = context.domain_lengths or (1.0,) * context.n_dims
    periodic = context.periodic or (True,) * context.n_dims
    absolute = not all(periodic) if absolute_positions is None else bool(absolute_positions)
    return IFactFormer(
        context.in_channels,
        context.out_channels,
        lengths,
        periodic,
        dim=dim,
        heads=heads,
        dim_head=dim_head,
        kernel_multiplier=kernel_multiplier,
        n_layers=n_layers,
        variant=variant,
        absolute_positions=absolute,
    )
