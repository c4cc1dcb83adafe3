"""Independent float64 reference of Conv2d (+ inference BatchNorm), numpy, written from PyTorch's
definition: zero padding, stride, dilation, groups. Writes tests/fixtures/vision/conv2d.json
(/usr/bin/python3 tests/reference/vision_conv2d.py; needs python3-numpy). Tensors in the fixture:
input HWC, weight OIHW (PyTorch), output HWC, all float32 values (rounded from the float64
generation so both sides see the same inputs); expected output in float64."""
import json, os
import numpy as np

def conv2d(x_chw, w, b, stride, pad, dil, groups):
    C, H, W = x_chw.shape
    O, Cg, KH, KW = w.shape
    xp = np.pad(x_chw, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    OH = (H + 2 * pad[0] - dil[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + 2 * pad[1] - dil[1] * (KW - 1) - 1) // stride[1] + 1
    y = np.zeros((O, OH, OW))
    Og = O // groups
    for o in range(O):
        g = o // Og
        for ky in range(KH):
            for kx in range(KW):
                patch = xp[g * Cg:(g + 1) * Cg,
                           ky * dil[0]: ky * dil[0] + stride[0] * (OH - 1) + 1: stride[0],
                           kx * dil[1]: kx * dil[1] + stride[1] * (OW - 1) + 1: stride[1]]
                y[o] += np.tensordot(w[o, :, ky, kx], patch, axes=(0, 0))
        if b is not None:
            y[o] += b[o]
    return y

def f32(a):
    return a.astype(np.float32).astype(np.float64)

rng = np.random.default_rng(1402)
specs = [
    # name, cin, cout, k, stride, pad, dil, groups, bias, h, w, bn
    ("3x3_s1_p1_bias", 3, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, True, 9, 7, False),
    ("3x3_s2_p1_nobias", 8, 16, (3, 3), (2, 2), (1, 1), (1, 1), 1, False, 11, 10, False),
    ("grouped_dil2", 8, 12, (3, 3), (1, 1), (2, 2), (2, 2), 4, True, 10, 9, False),
    ("depthwise_5x5_s2", 6, 6, (5, 5), (2, 2), (2, 2), (1, 1), 6, True, 13, 12, False),
    ("1x1_s2_downsample_bn", 16, 20, (1, 1), (2, 2), (0, 0), (1, 1), 1, False, 8, 8, True),
    ("stem_7x7_s2_p3_bn", 3, 4, (7, 7), (2, 2), (3, 3), (1, 1), 1, False, 20, 18, True),
    ("rect_3x1_pad01", 5, 7, (3, 1), (1, 2), (0, 1), (1, 1), 1, True, 6, 9, False),
]
cases = []
for name, cin, cout, k, s, p, d, g, has_b, h, w, bn in specs:
    x = f32(rng.normal(size=(cin, h, w)))
    fan = cin // g * k[0] * k[1]
    wt = f32(rng.normal(size=(cout, cin // g, k[0], k[1])) / np.sqrt(fan))
    b = f32(rng.normal(size=cout) * 0.1) if has_b else None
    y = conv2d(x, wt, b, s, p, d, g)
    case = dict(name=name, in_channels=cin, out_channels=cout, kernel=list(k), stride=list(s), padding=list(p),
                dilation=list(d), groups=g, height=h, width=w,
                input_hwc=x.transpose(1, 2, 0).reshape(-1).tolist(), weight=wt.reshape(-1).tolist(),
                bias=None if b is None else b.tolist())
    if bn:
        gamma = f32(rng.uniform(0.5, 1.5, cout)); beta = f32(rng.normal(size=cout) * 0.1)
        mean = f32(rng.normal(size=cout) * 0.1); var = f32(rng.uniform(0.5, 2.0, cout)); eps = 1e-5
        y = (y - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps) * gamma[:, None, None] + beta[:, None, None]
        case["bn"] = dict(gamma=gamma.tolist(), beta=beta.tolist(), mean=mean.tolist(), var=var.tolist(), eps=eps)
    case["out_height"], case["out_width"] = y.shape[1], y.shape[2]
    case["expected_hwc"] = y.transpose(1, 2, 0).reshape(-1).tolist()
    cases.append(case)
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(root, "tests", "fixtures", "vision", "conv2d.json"), "w") as f:
    json.dump({"generator": "tests/reference/vision_conv2d.py", "cases": cases}, f)
print("wrote", len(cases), "cases")
