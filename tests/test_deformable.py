import math

import torch

from avsbench_kit.nn.deformable import MultiScaleDeformableAttention, deformable_sample, reference_points


def naive_sample(value, shapes, locations, weights):
    """Bilinear sampling written out point by point: pixel (i, j) has its centre at ((j+0.5)/w, (i+0.5)/h)."""
    b, _, heads, d = value.shape
    _, lq, _, levels, points, _ = locations.shape
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    out = torch.zeros(b, lq, heads, d, dtype=torch.float64)
    for bi in range(b):
        for qi in range(lq):
            for hi in range(heads):
                for li, (h, w) in enumerate(shapes):
                    grid = value[bi, starts[li]:starts[li + 1], hi].double().reshape(h, w, d)
                    for pi in range(points):
                        x = locations[bi, qi, hi, li, pi, 0].item() * w - 0.5
                        y = locations[bi, qi, hi, li, pi, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        sample = torch.zeros(d, dtype=torch.float64)
                        for yy, wy in ((y0, y0 + 1 - y), (y0 + 1, y - y0)):
                            for xx, wx in ((x0, x0 + 1 - x), (x0 + 1, x - x0)):
                                if 0 <= yy < h and 0 <= xx < w:
                                    sample += grid[yy, xx] * wy * wx
                        out[bi, qi, hi] += weights[bi, qi, hi, li, pi].item() * sample
    return out.reshape(b, lq, heads * d)


def test_grid_sample_path_matches_naive_bilinear():
    torch.manual_seed(0)
    shapes = [(4, 5), (2, 3)]
    value = torch.randn(2, sum(h * w for h, w in shapes), 2, 3)
    locations = torch.rand(2, 6, 2, 2, 3, 2) * 1.4 - 0.2  # some points fall outside: zero padding
    weights = torch.rand(2, 6, 2, 2, 3)
    ours = deformable_sample(value, shapes, locations, weights)
    torch.testing.assert_close(ours.double(), naive_sample(value, shapes, locations, weights), rtol=1e-5, atol=1e-5)


def test_sampling_at_pixel_centres_reads_the_pixels():
    shapes = [(3, 4)]
    value = torch.randn(1, 12, 1, 2)
    ref = reference_points(shapes, torch.device("cpu"), torch.float32)  # [1, 12, 1, 2]
    locations = ref.view(1, 12, 1, 1, 1, 2)
    out = deformable_sample(value, shapes, locations, torch.ones(1, 12, 1, 1, 1))
    torch.testing.assert_close(out, value.reshape(1, 12, 2))


def test_module_matches_naive_reference_with_random_offsets():
    torch.manual_seed(1)
    attn = MultiScaleDeformableAttention(dim=16, levels=2, heads=2, points=2)
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.5)
    torch.nn.init.normal_(attn.attention_weights.weight, std=0.5)
    shapes = [(4, 5), (2, 3)]  # (h, w): offsets are normalised by (w, h)
    x = torch.randn(1, 26, 16)
    ref = reference_points(shapes, x.device, x.dtype)
    out = attn(x, x, ref, shapes)
    # the same computation with the naive sampler
    v = attn.value_proj(x).view(1, 26, 2, 8)
    offsets = attn.sampling_offsets(x).view(1, 26, 2, 2, 2, 2)
    w = attn.attention_weights(x).view(1, 26, 2, 4).softmax(-1).view(1, 26, 2, 2, 2)
    norm = torch.tensor([[5.0, 4.0], [3.0, 2.0]])
    loc = ref[:, :, None, :, None, :] + offsets / norm[None, None, None, :, None, :]
    expected = attn.output_proj(naive_sample(v, shapes, loc, w).float())
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in MultiScaleDeformableAttention(256, 3, 8, 4).parameters()) == 205_600
