"""Independent float64 reference for quantization-aware distillation of a Llama model (numpy,
sharing no code with the engine): the loss KL(teacher || student) of next-token distributions
averaged over all positions, where the teacher is the float model and the student the same model
with int8 per-output-channel symmetric weights (s = max|w| / 127, q = round(w / s): the design doc's
W8A16) in every decoder linear layer, and its gradients with respect to the student's (fake-
quantized) linear weights and its RMSNorm weights, by central finite differences. The graph follows
transformers' LlamaForCausalLM (RMSNorm, rotate_half RoPE, grouped-query causal attention, SiLU-gated
MLP, tied embedding head). A second model follows transformers' Qwen2ForCausalLM: the same graph with
biases on the q / k / v projections (frozen: the student keeps them float) and an untied lm_head.

  /usr/bin/python3 tests/reference/llama_distill.py     # writes tests/fixtures/distill/tiny{,-qwen2}/

Output: config.json, model.safetensors (float32 teacher weights), expected.json (tokens [batch, seq],
the loss, and for every trained parameter its gradient, float64)."""
import json, os, struct
import numpy as np

CFG = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=16, intermediate_size=24,
           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=32,
           max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu",
           tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
QWEN2 = dict(CFG, architectures=["Qwen2ForCausalLM"], model_type="qwen2", tie_word_embeddings=False,
             use_sliding_window=False)
H, I, L, NH, NKV, V = 16, 24, 2, 4, 2, 32
HD = H // NH
LIN = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
       "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
SHAPES = {"self_attn.q_proj": (NH * HD, H), "self_attn.k_proj": (NKV * HD, H), "self_attn.v_proj": (NKV * HD, H),
          "self_attn.o_proj": (H, NH * HD), "mlp.gate_proj": (I, H), "mlp.up_proj": (I, H), "mlp.down_proj": (H, I)}

def rms(x, g): return x / np.sqrt((x * x).mean(-1, keepdims=True) + CFG["rms_norm_eps"]) * g

def rope(x, T):  # x [T, heads, HD]
    inv = 1.0 / CFG["rope_theta"] ** (np.arange(0, HD, 2) / HD)
    f = np.outer(np.arange(T), inv); f = np.concatenate([f, f], -1)
    c, s = np.cos(f)[:, None, :], np.sin(f)[:, None, :]
    rot = np.concatenate([-x[..., HD // 2:], x[..., :HD // 2]], -1)
    return x * c + rot * s

def linear(P, name, h):  # h @ W^T (+ b when the checkpoint has a bias)
    y = h @ P[name + ".weight"].T
    return y + P[name + ".bias"] if name + ".bias" in P else y

def logits(P, ids):
    T = len(ids); x = P["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        w = lambda n: P[f"model.layers.{l}.{n}.weight"]
        lin = lambda n, h: linear(P, f"model.layers.{l}.{n}", h)
        h = rms(x, w("input_layernorm"))
        q = rope(lin("self_attn.q_proj", h).reshape(T, NH, HD), T)
        k = rope(lin("self_attn.k_proj", h).reshape(T, NKV, HD), T)
        v = lin("self_attn.v_proj", h).reshape(T, NKV, HD)
        k, v = np.repeat(k, NH // NKV, 1), np.repeat(v, NH // NKV, 1)
        a = np.einsum("thd,shd->hts", q, k) / np.sqrt(HD) + mask
        a = np.exp(a - a.max(-1, keepdims=True)); a /= a.sum(-1, keepdims=True)
        x = x + np.einsum("hts,shd->thd", a, v).reshape(T, H) @ w("self_attn.o_proj").T
        h = rms(x, w("post_attention_layernorm"))
        g, u = h @ w("mlp.gate_proj").T, h @ w("mlp.up_proj").T
        x = x + (g / (1 + np.exp(-g)) * u) @ w("mlp.down_proj").T
    return rms(x, P["model.norm.weight"]) @ P.get("lm_head.weight", P["model.embed_tokens.weight"]).T

def log_softmax(z):
    z = z - z.max(-1, keepdims=True); return z - np.log(np.exp(z).sum(-1, keepdims=True))

def loss(student, teacher_lp, tokens):
    total = 0.0
    for b, ids in enumerate(tokens):
        lt, ls = teacher_lp[b], log_softmax(logits(student, ids))
        total += (np.exp(lt) * (lt - ls)).sum()
    return total / tokens.size

def int8_channel(w):
    s = np.abs(w).max(1, keepdims=True) / 127.0
    return np.clip(np.round(w / s), -128, 127) * s

def main(cfg, seed, folder):
    rng = np.random.default_rng(seed)
    P = {"model.embed_tokens.weight": rng.normal(0, 1.0, (V, H)), "model.norm.weight": rng.uniform(0.5, 1.5, H)}
    for l in range(L):
        for n in LIN:
            P[f"model.layers.{l}.{n}.weight"] = rng.normal(0, 0.4, SHAPES[n])
        P[f"model.layers.{l}.input_layernorm.weight"] = rng.uniform(0.5, 1.5, H)
        P[f"model.layers.{l}.post_attention_layernorm.weight"] = rng.uniform(0.5, 1.5, H)
    if cfg["model_type"] == "qwen2":
        for l in range(L):
            for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                P[f"model.layers.{l}.{n}.bias"] = rng.normal(0, 0.5, SHAPES[n][0])
        P["lm_head.weight"] = rng.normal(0, 1.0, (V, H))
    P = {k: v.astype(np.float32).astype(np.float64) for k, v in P.items()}  # what the file holds
    tokens = rng.integers(0, V, (2, 7))
    teacher_lp = [log_softmax(logits(P, ids)) for ids in tokens]
    student = {k: (int8_channel(v) if any(n in k for n in LIN) and k.endswith(".weight") else v.copy()) for k, v in P.items()}
    trained = [f"model.layers.{l}.{n}.weight" for l in range(L) for n in LIN]
    trained += [f"model.layers.{l}.{n}.weight" for l in range(L) for n in ("input_layernorm", "post_attention_layernorm")]
    trained += ["model.norm.weight"]
    eps = 1e-5
    grads = {}
    for name in trained:
        g = np.zeros_like(student[name]); flat = student[name].reshape(-1)
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps; up = loss(student, teacher_lp, tokens)
            flat[i] = keep - eps; down = loss(student, teacher_lp, tokens)
            flat[i] = keep
            g.reshape(-1)[i] = (up - down) / (2 * eps)
        grads[name] = g.reshape(-1).tolist()
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "distill", folder)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f: json.dump(cfg, f, indent=1)
    header, blobs, off = {}, [], 0
    for k in sorted(P):
        b = P[k].astype("<f4").tobytes(); header[k] = {"dtype": "F32", "shape": list(P[k].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"tokens": tokens.tolist(), "loss": loss(student, teacher_lp, tokens), "grads": grads}, f)
    print(folder, "loss", loss(student, teacher_lp, tokens))

main(CFG, 7, "tiny")
main(QWEN2, 8, "tiny-qwen2")
