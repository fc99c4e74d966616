"""The statistics ("wide") path: masked per-feature mean and standard deviation of a clip, mapped linearly to the logits.

A model that adds this path's output to its deep logits sees, from the first step, what a logistic regression
on per-clip AU means/stds sees; the deep path only has to add what the time course reveals.

With ``kernel_features`` the path also reads fixed random dilated kernels (``KernelFeatures``, after MiniRocket):
each one sums a few channels of the clip and of its frame-to-frame differences, convolves them with a 9-tap
pattern spaced 1 to 32 frames apart (each tap reading the mean of the frames of its spacing, so that a short event
between two taps still counts), and reports the share of frames where the response exceeds a bias drawn from
the training clips. That is a timing feature a linear map can use from the first step: which movement follows
which, how regularly something recurs, how fast a movement starts.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KERNEL_FEATURES = 4032  # the default: 672 kernels at each tap spacing
KERNEL_DILATIONS = (1, 2, 4, 8, 16, 32)  # tap spacings in frames: a kernel spans 9 to 257 frames
KERNEL_TAPS = 9
KERNEL_LAYOUT_SEED = 20261205  # the kernels' channels, signs and quantiles; biases come from data (``fit_biases``)
KERNEL_SOFTNESS = 0.05  # the step "response above its bias" is a sigmoid this wide, in units of the response's spread
BIAS_FRAME_STRIDE = 4  # a kernel's bias is a quantile of its responses at every 4th real frame of the bias clips
CLIPS_PER_CHUNK = 4  # clips whose responses are computed together: a chunk's responses stay in the CPU's cache
KERNEL_TAP_READS = ("mean", "point")  # a tap reads the mean of the frames of its spacing, or one frame (kernels made before the option)


def clip_statistics(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean and standard deviation over time of ``x [B, T, F]`` -> ``[B, 2F]`` (real frames only)."""
    weights = mask.to(x.dtype)[:, :, None]
    count = weights.sum(dim=1).clamp(min=1.0)
    mean = (x * weights).sum(dim=1) / count
    variance = (((x - mean[:, None, :]) * weights) ** 2).sum(dim=1) / count
    return torch.cat([mean, variance.clamp(min=1e-8).sqrt()], dim=1)


def kernel_patterns() -> torch.Tensor:
    """MiniRocket's 84 patterns [84, 9]: -1 on every tap but three, which hold 2 (each pattern sums to zero)."""
    patterns = -torch.ones(84, KERNEL_TAPS)
    for row, taps in enumerate(itertools.combinations(range(KERNEL_TAPS), 3)):
        patterns[row, list(taps)] = 2.0
    return patterns


def frame_differences(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x [B, C, T]`` -> its change from the previous frame, 0 on the first frame and wherever either frame is padding."""
    both = (mask[:, 1:] & mask[:, :-1]).to(x.dtype)[:, None, :]
    return F.pad((x[:, :, 1:] - x[:, :, :-1]) * both, (1, 0))


def tap_means(channels: torch.Tensor, real: torch.Tensor, spacing: int) -> torch.Tensor:
    """``channels [B, C, T]`` averaged over ``spacing`` frames centred on each frame (padding and the frames beyond
    the ends count as zero), kept on ``real`` frames ``[B, 1, T]`` only: what a tap of that spacing reads, so that
    the nine taps together cover every frame of the kernel's span."""
    if spacing < 2:
        return channels
    window = (spacing // 2, spacing - 1 - spacing // 2)
    return F.avg_pool1d(F.pad(channels, window), kernel_size=spacing, stride=1) * real


def _chunks(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``x`` split into ``CLIPS_PER_CHUNK`` clips at a time; whole while traced for export (any batch size then)."""
    return (x,) if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() else x.split(CLIPS_PER_CHUNK)


class KernelFeatures(nn.Module):
    """``n_kernels`` fixed dilated kernels over a clip's channels and their differences, each pooled to the (soft)
    share of real frames where its response exceeds its bias: ``[B, n_kernels]`` values in [0, 1].

    Before its pattern, a kernel mixes channels: half the kernels add one to four of them with random signs (the
    shape of one movement, the order of two), the other half weigh every channel by a Gaussian draw (orders and
    co-occurrences across the whole face). ``tap_reads``: "mean" (each tap reads the mean of its spacing's frames,
    ``tap_means``) or "point" (one frame: kernels made before that option)."""

    def __init__(self, n_features: int, n_kernels: int, tap_reads: str = "mean") -> None:
        super().__init__()
        self.tap_reads = tap_reads
        per_spacing, channels = n_kernels // len(KERNEL_DILATIONS), 2 * n_features
        generator = torch.Generator().manual_seed(KERNEL_LAYOUT_SEED)
        mixing = torch.zeros(len(KERNEL_DILATIONS), per_spacing, channels)
        for spacing, kernel in itertools.product(range(len(KERNEL_DILATIONS)), range(per_spacing)):
            if kernel >= per_spacing // 2:  # the second half: every channel, Gaussian weights
                mixing[spacing, kernel] = torch.randn(channels, generator=generator) / channels**0.5
                continue
            size = int(torch.randint(1, min(channels, 4) + 1, (1,), generator=generator))
            chosen = torch.randperm(channels, generator=generator)[:size]
            signs = torch.randint(0, 2, (size,), generator=generator) * 2.0 - 1.0
            mixing[spacing, kernel, chosen] = signs / size**0.5
        patterns = kernel_patterns()
        taps = patterns[torch.arange(per_spacing) % len(patterns)]
        self.register_buffer("mixing", mixing)  # [spacings, kernels, 2F]: which channels each kernel sums, and signs
        self.register_buffer("taps", taps[:, None, :])  # [kernels, 1, 9]
        self.register_buffer("quantile", 0.1 + 0.8 * torch.rand(len(KERNEL_DILATIONS), per_spacing, generator=generator))
        self.register_buffer("bias", torch.zeros(len(KERNEL_DILATIONS), per_spacing))
        self.register_buffer("softness", torch.ones(len(KERNEL_DILATIONS), per_spacing))

    @property
    def n_kernels(self) -> int:
        return self.mixing.shape[0] * self.mixing.shape[1]

    @staticmethod
    def channels(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the kernels read from ``x [B, T, F]``: its features and their frame differences, ``[B, 2F, T]``."""
        x = x.float().transpose(1, 2)
        return torch.cat([x, frame_differences(x, mask)], dim=1)

    def tap_inputs(self, channels: torch.Tensor, real: torch.Tensor, spacing: int) -> torch.Tensor:
        """What a tap of ``spacing`` reads from ``channels [B, 2F, T]`` (``real`` frames ``[B, 1, T]``): their means
        over its frames, or the frames themselves."""
        return tap_means(channels, real, spacing) if self.tap_reads == "mean" else channels

    def response(self, inputs: torch.Tensor, mixing: torch.Tensor, spacing: int) -> torch.Tensor:
        """One tap spacing's kernels on its ``tap_inputs [B, 2F, T]``: each mixes them by its row of ``mixing``
        [kernels, 2F], then applies its pattern (``convolve``): ``[B, kernels, T]``."""
        return self.convolve(torch.matmul(mixing, inputs), spacing)

    def convolve(self, mixed: torch.Tensor, spacing: int) -> torch.Tensor:
        """Each kernel's 9-tap pattern over its own row of ``mixed [B, kernels, T]``, taps ``spacing`` frames apart,
        zero beyond the ends: a depthwise dilated convolution written as nine shifted sums (faster on CPU)."""
        length, reach = mixed.shape[2], spacing * (KERNEL_TAPS // 2)
        padded = F.pad(mixed, (reach, reach))
        out = self.taps[None, :, 0, 0, None] * padded[:, :, :length]
        for tap in range(1, KERNEL_TAPS):
            out.addcmul_(self.taps[None, :, 0, tap, None], padded[:, :, tap * spacing : tap * spacing + length])
        return out

    @torch.no_grad()
    def fit_biases(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        """Each kernel's bias: its quantile of the responses over the real frames of training clips ``x``; the
        step's softness: ``KERNEL_SOFTNESS`` times their standard deviation."""
        channels, real = self.channels(x, mask), mask.reshape(-1)
        for spacing, (mixing, dilation) in enumerate(zip(self.mixing, KERNEL_DILATIONS, strict=True)):
            inputs = self.tap_inputs(channels, mask[:, None, :].float(), dilation)
            response = torch.cat([self.response(part, mixing, dilation) for part in _chunks(inputs)])
            values = response.transpose(0, 1).reshape(response.shape[1], -1)[:, real][:, ::BIAS_FRAME_STRIDE].sort(dim=1).values
            position = self.quantile[spacing] * (values.shape[1] - 1)  # torch.quantile's linear interpolation
            below = position.floor().long()
            above = (below + 1).clamp(max=values.shape[1] - 1)
            low, high = values.gather(1, below[:, None])[:, 0], values.gather(1, above[:, None])[:, 0]
            self.bias[spacing] = low + (high - low) * (position - below)
            self.softness[spacing] = (KERNEL_SOFTNESS * values.std(dim=1)).clamp(min=1e-4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.to(torch.float32)
        share = (weights / weights.sum(dim=1, keepdim=True).clamp(min=1.0))[:, None, :]  # [B, 1, T]: mean over real frames
        channels, pooled = self.channels(x, mask), []
        for mixing, dilation, bias, softness in zip(self.mixing, KERNEL_DILATIONS, self.bias, self.softness, strict=True):
            scaled, offset = mixing / softness[:, None], (bias / softness)[:, None]  # the step's width folded in
            inputs = self.tap_inputs(channels, weights[:, None, :], dilation)
            pooled.append(torch.cat([self._pooled_step(part, frames, scaled, offset, dilation)
                                     for part, frames in zip(_chunks(inputs), _chunks(share), strict=True)]))
        return torch.cat(pooled, dim=1)

    def _pooled_step(self, inputs: torch.Tensor, share: torch.Tensor, scaled: torch.Tensor, offset: torch.Tensor,
                     spacing: int) -> torch.Tensor:
        """One chunk's soft share of frames above each kernel's bias (the step's width folded into ``scaled`` and
        ``offset``), pooled before the next chunk is computed, so that its responses stay in cache: ``[b, kernels]``."""
        step = torch.sigmoid(self.response(inputs, scaled, spacing).sub_(offset))
        return (step * share if step.requires_grad else step.mul_(share)).sum(dim=2)  # in place unless explained


class StatisticsPath(nn.Module):
    """Standardised clip statistics (and, with ``n_kernels``, the kernel features) -> one linear layer ->
    ``n_outputs`` logits; zero-initialised (adds nothing at first)."""

    def __init__(self, n_features: int, n_outputs: int = 25, n_kernels: int = 0, kernel_taps: str = "mean") -> None:
        super().__init__()
        width = 2 * n_features + n_kernels
        self.kernels = KernelFeatures(n_features, n_kernels, kernel_taps) if n_kernels else None
        self.register_buffer("stat_mean", torch.zeros(width))
        self.register_buffer("stat_std", torch.ones(width))
        self.linear = nn.Linear(width, n_outputs)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def set_statistics_normalization(self, statistics: np.ndarray) -> None:
        """Standardise with the mean/std over training clips of ``features`` ([N, width] array)."""
        statistics = np.asarray(statistics, dtype=np.float64)
        std = statistics.std(axis=0)
        self.stat_mean.copy_(torch.as_tensor(statistics.mean(axis=0), dtype=torch.float32))
        self.stat_std.copy_(torch.as_tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32))

    @torch.no_grad()
    def drop_kernels(self) -> None:
        """Keep only the clip statistics' columns (the kernels' weights are zero or unwanted)."""
        width = self.linear.in_features - self.kernels.n_kernels
        linear = nn.Linear(width, self.linear.out_features).to(self.linear.weight.device)
        linear.weight.copy_(self.linear.weight[:, :width])
        linear.bias.copy_(self.linear.bias)
        self.linear, self.kernels = linear, None
        self.stat_mean, self.stat_std = self.stat_mean[:width].clone(), self.stat_std[:width].clone()

    def features(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the linear layer reads before standardisation: clip statistics, then the kernel features."""
        statistics = clip_statistics(x.float(), mask)
        return statistics if self.kernels is None else torch.cat([statistics, self.kernels(x, mask)], dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, F]`` (normalised, padding zeroed) and ``mask [B, T]`` -> logits ``[B, n_outputs]``."""
        return self.linear((self.features(x, mask) - self.stat_mean) / self.stat_std)
