"""Independent float64 reference of torchvision's ResNet-18 (He et al. 2016; torchvision
BasicBlock layout), numpy, sharing no code with the engine. Synthetic weights in the real
layout (BatchNorm with random running statistics) at a chosen base width.

  /usr/bin/python3 tests/reference/vision_resnet.py            # writes tests/fixtures/vision/resnet18-w4/
  /usr/bin/python3 tests/reference/vision_resnet.py --width 64 --classes 1000 --size 224 --out DIR
                                                               # full-size ResNet-18 (~45 MB, not committed)

The fixture directory holds model.safetensors, config.json (id2label), input.f32 (the [3, S, S]
preprocessed input, float32 little-endian) and expected.json (float64 logits)."""
import argparse, json, os, struct
import numpy as np

def conv2d(x, w, stride, pad):  # x [C, H, W], w [O, C, KH, KW], float64
    C, H, W = x.shape
    O, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    y = np.zeros((O, OH, OW))
    for ky in range(KH):
        for kx in range(KW):
            patch = xp[:, ky: ky + stride * (OH - 1) + 1: stride, kx: kx + stride * (OW - 1) + 1: stride]
            y += np.einsum("oc,chw->ohw", w[:, :, ky, kx], patch)
    return y

def bn(x, p, name):
    g, b, m, v = (p[f"{name}.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
    return (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5) * g[:, None, None] + b[:, None, None]

def maxpool3s2p1(x):
    C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    OH, OW = (H - 1) // 2 + 1, (W - 1) // 2 + 1
    y = np.full((C, OH, OW), -np.inf)
    for ky in range(3):
        for kx in range(3):
            y = np.maximum(y, xp[:, ky: ky + 2 * (OH - 1) + 1: 2, kx: kx + 2 * (OW - 1) + 1: 2])
    return y

def resnet18(p, x):
    relu = lambda t: np.maximum(t, 0)
    x = maxpool3s2p1(relu(bn(conv2d(x, p["conv1.weight"], 2, 3), p, "bn1")))
    for l in range(1, 5):
        for b in range(2):
            n = f"layer{l}.{b}"
            s = 2 if (b == 0 and l > 1) else 1
            out = relu(bn(conv2d(x, p[f"{n}.conv1.weight"], s, 1), p, f"{n}.bn1"))
            out = bn(conv2d(out, p[f"{n}.conv2.weight"], 1, 1), p, f"{n}.bn2")
            short = bn(conv2d(x, p[f"{n}.downsample.0.weight"], s, 0), p, f"{n}.downsample.1") if f"{n}.downsample.0.weight" in p else x
            x = relu(out + short)
    pooled = x.mean(axis=(1, 2))
    return p["fc.weight"] @ pooled + p["fc.bias"]

def make_weights(width, classes, rng):
    p = {}
    def conv(name, o, c, k):
        p[name] = rng.normal(size=(o, c, k, k)) * np.sqrt(2.0 / (c * k * k))
    def norm(name, o):
        p[name + ".weight"] = rng.uniform(0.4, 0.9, o); p[name + ".bias"] = rng.normal(size=o) * 0.1
        p[name + ".running_mean"] = rng.normal(size=o) * 0.1; p[name + ".running_var"] = rng.uniform(0.5, 1.5, o)
        p[name + ".num_batches_tracked"] = None  # torchvision checkpoints carry it; the loader ignores it
    conv("conv1.weight", width, 3, 7); norm("bn1", width)
    cin = width
    for l in range(1, 5):
        planes = width << (l - 1)
        for b in range(2):
            n = f"layer{l}.{b}"
            s = 2 if (b == 0 and l > 1) else 1
            conv(f"{n}.conv1.weight", planes, cin, 3); norm(f"{n}.bn1", planes)
            conv(f"{n}.conv2.weight", planes, planes, 3); norm(f"{n}.bn2", planes)
            if s != 1 or cin != planes:
                conv(f"{n}.downsample.0.weight", planes, cin, 1); norm(f"{n}.downsample.1", planes)
            cin = planes
    p["fc.weight"] = rng.normal(size=(classes, cin)) / np.sqrt(cin)
    p["fc.bias"] = rng.normal(size=classes) * 0.1
    # Both sides use the float32 values.
    return {k: (np.int64(0) if v is None else v.astype(np.float32)) for k, v in p.items()}

def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        dt = "I64" if a.dtype == np.int64 else "F32"
        b = np.ascontiguousarray(a).astype("<i8" if dt == "I64" else "<f4").tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "vision", "resnet18-w4"))
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    p = make_weights(a.width, a.classes, rng)
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), p)
    labels = {str(i): f"synthetic class {i}" for i in range(a.classes)}
    json.dump({"model_type": "resnet", "architectures": ["ResNetForImageClassification"], "num_labels": a.classes,
               "id2label": labels, "_comment": "synthetic weights (tests/reference/vision_resnet.py)"},
              open(os.path.join(a.out, "config.json"), "w"), indent=1)
    xs, logits = [], []
    for i in range(a.images):
        x = rng.normal(size=(3, a.size, a.size)).astype(np.float32)
        xs.append(x)
        pf = {k: v.astype(np.float64) for k, v in p.items() if v.ndim > 0}
        logits.append(resnet18(pf, x.astype(np.float64)).tolist())
    np.concatenate([x.reshape(-1) for x in xs]).astype("<f4").tofile(os.path.join(a.out, "input.f32"))
    json.dump({"size": a.size, "images": a.images, "width": a.width, "classes": a.classes, "logits": logits},
              open(os.path.join(a.out, "expected.json"), "w"))
    print("wrote", a.out, "logits[0][:5] =", [round(v, 4) for v in logits[0][:5]])

if __name__ == "__main__":
    main()
