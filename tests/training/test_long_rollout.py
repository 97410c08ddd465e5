"""Long rollouts of a 3-D model: energy, spectrum distance, drift and blow-up frames against the closed
form of a model that amplifies its input by a factor g each frame (energy g^(2n) E_0, distance 2 n ln g)."""

import json
import math

import pytest
import torch

from sciml.errors import ConfigError
from sciml.metrics.turbulence import energy_spectrum_3d, kinetic_energy_3d
from sciml.training.long_rollout import long_rollout, plot_long_rollouts


def test_long_rollout_reports_drift_and_blowup_of_an_amplifying_model(tmp_path):
    torch.manual_seed(0)
    n, gain = 8, 1.25
    frame = torch.randn(1, 6, n, n, n, dtype=torch.float64)  # velocity (0, 1, 2) and three other channels

    def amplify(window: torch.Tensor) -> torch.Tensor:  # t_in = 1, t_out = 2: g u, g^2 u
        return torch.cat([gain * window[:, -6:], gain**2 * window[:, -6:]], dim=1)

    result = long_rollout(amplify, frame, steps=20, reference=frame, velocity_channels=(0, 1, 2))
    # energy ratio g^(2(j+1)) at predicted frame j: above 1.5 at once, above 10 at frame 5 (g^12 = 14.6)
    assert result.drift == 0 and result.blowup == 5 and result.tolerances["max_shell"] == 2  # (8 - 1) // 3
    assert result.frames == 6  # stopped at the step holding the blow-up (3 steps of 2 frames)
    e0 = float(kinetic_energy_3d(frame[:, :3]).mean())
    assert result.reference_energy == pytest.approx(e0)
    for j in range(result.frames):
        assert result.energy[j] == pytest.approx(gain ** (2 * (j + 1)) * e0, rel=1e-6)
        assert result.spectrum_distance[j] == pytest.approx(2 * (j + 1) * math.log(gain), rel=1e-5)
    k, spectrum = energy_spectrum_3d(frame[:, :3])
    assert result.wavenumbers == pytest.approx(k.tolist())
    assert result.reference_spectrum == pytest.approx(spectrum[0].tolist())
    steady = long_rollout(lambda w: w, frame, steps=4, reference=frame, velocity_channels=(0, 1, 2))
    assert (steady.drift, steady.blowup, steady.frames) == (None, None, 4)
    assert steady.spectrum_distance == pytest.approx([0.0] * 4, abs=1e-12)
    record = json.loads(json.dumps(result.to_dict()))
    assert record["blowup"] == 5 and len(record["spectra"]) == 6
    plot_long_rollouts(tmp_path / "long.png", {"amplify": result, "steady": steady}, frame_time=0.5)
    assert (tmp_path / "long.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="velocity in channels"):
        long_rollout(amplify, frame, steps=2, reference=frame[:, :2], velocity_channels=(0, 1, 2))
