"""Independent float64 reference of image preprocessing (numpy), written from the definitions:
PIL's separable resampling (filter support scaled by the downscale factor; bilinear = triangle,
bicubic = Keys a = -0.5; weights normalised per output pixel; each pass rounded to uint8), the
transformers resize/center-crop geometry, rescale and normalise. Dense weight matrices, no fixed
point: it shares no code or structure with web/src/vision. Writes
tests/fixtures/vision/preprocess.json (/usr/bin/python3 tests/reference/vision_preprocess.py; needs python3-numpy)."""
import base64, json, math, os
import numpy as np

def kernel(name, x):
    x = np.abs(x)
    if name == "bilinear":
        return np.where(x < 1, 1 - x, 0.0)
    a = -0.5
    return np.where(x < 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                    np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))

def weights(n_in, n_out, name):
    support = {"bilinear": 1.0, "bicubic": 2.0}[name]
    scale = n_in / n_out
    fs = max(scale, 1.0)
    W = np.zeros((n_out, n_in))
    for o in range(n_out):
        c = (o + 0.5) * scale
        lo = max(int(c - support * fs + 0.5), 0)
        hi = min(int(c + support * fs + 0.5), n_in)
        src = np.arange(lo, hi)
        w = kernel(name, (src + 0.5 - c) / fs)
        W[o, lo:hi] = w / w.sum()
    return W

def to_u8(x):
    return np.clip(np.floor(x + 0.5), 0, 255)

def resize(img, h, w, name):  # img float64 [H, W, 3] holding integers
    if w != img.shape[1]:
        img = to_u8(np.einsum("ox,yxc->yoc", weights(img.shape[1], w, name), img))
    if h != img.shape[0]:
        img = to_u8(np.einsum("oy,yxc->oxc", weights(img.shape[0], h, name), img))
    return img

def preprocess(img, case):
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = img[:, :, :3].astype(np.float64)
    H, W = img.shape[:2]
    if "exact" in case:
        h, w = case["exact"]
    elif "shortest" in case:
        e = case["shortest"]
        if W <= H:
            w, h = e, int(e * H / W)
        else:
            h, w = e, int(e * W / H)
    else:
        h, w = H, W
    img = resize(img, h, w, case["filter"])
    if "crop" in case:
        ch, cw = case["crop"]
        t, l = (img.shape[0] - ch) // 2, (img.shape[1] - cw) // 2
        img = img[t:t + ch, l:l + cw]
    x = img * case.get("rescale", 1 / 255)
    if "mean" in case:
        x = (x - np.array(case["mean"])) / np.array(case["std"])
    return x.transpose(2, 0, 1)  # CHW

def make_image(rng, h, w, c):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 / max(w - 1, 1)), (yy * 255 / max(h - 1, 1)), ((xx + yy) * 7 % 256)], axis=2)
    img = 0.6 * base[:, :, :c] + 0.4 * rng.integers(0, 256, size=(h, w, c)) if c <= 3 else None
    if c == 4:
        img = np.concatenate([0.6 * base + 0.4 * rng.integers(0, 256, size=(h, w, 3)), rng.integers(0, 256, size=(h, w, 1))], axis=2)
    return np.floor(img).astype(np.uint8)

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
blip = json.load(open(os.path.join(root, "..", "shared", "hub", "Salesforce", "blip-image-captioning-base", "preprocessor_config.json")))
IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
cases = [
    # name, (h, w, c), webquant config, reference recipe, pixels to store (None = all)
    ("bicubic_down", (23, 37, 3), {"size": {"height": 12, "width": 16}, "resample": 3, **{"image_mean": IMAGENET["mean"], "image_std": IMAGENET["std"]}},
     {"exact": (12, 16), "filter": "bicubic", **IMAGENET}, None),
    ("bilinear_up_rgba", (7, 11, 4), {"size": {"height": 19, "width": 29}, "resample": 2, "do_normalize": False},
     {"exact": (19, 29), "filter": "bilinear"}, None),
    ("clip_gray_shortest_crop", (30, 41, 1), {"image_processor_type": "CLIPImageProcessor", "size": 20, "do_center_crop": True, "crop_size": 16,
     "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, {"shortest": 20, "crop": (16, 16), "filter": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}, None),
    ("blip_real_config", (48, 64, 3), blip, {"exact": (384, 384), "filter": "bicubic", "mean": blip["image_mean"], "std": blip["image_std"]}, 200),
    ("convnext_resnet", (50, 70, 3), {"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 224}, "crop_pct": 0.875, "resample": 2, **{"image_mean": IMAGENET["mean"], "image_std": IMAGENET["std"]}},
     {"shortest": 256, "crop": (224, 224), "filter": "bilinear", **IMAGENET}, 200),
    ("bicubic_big_down", (150, 97, 3), {"size": {"height": 32, "width": 24}, "resample": 3}, {"exact": (32, 24), "filter": "bicubic", "mean": [0.5] * 3, "std": [0.5] * 3}, None),
]
rng = np.random.default_rng(14)
out = []
for name, (h, w, c), cfg, recipe, n_pix in cases:
    img = make_image(rng, h, w, c)
    y = preprocess(img, recipe)
    C, OH, OW = y.shape
    flat = y.reshape(-1)
    idx = np.arange(flat.size) if n_pix is None else np.sort(rng.choice(flat.size, n_pix, replace=False))
    out.append(dict(name=name, width=w, height=h, channels=c, pixels=base64.b64encode(img.tobytes()).decode(),
                    config=cfg, out_height=OH, out_width=OW, index=idx.tolist(), expected=[float(v) for v in flat[idx]]))
json.dump({"generator": "tests/reference/vision_preprocess.py", "cases": out}, open(os.path.join(root, "tests", "fixtures", "vision", "preprocess.json"), "w"), indent=0)
print("wrote", len(out), "cases")
