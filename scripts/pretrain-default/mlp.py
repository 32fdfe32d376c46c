"""The MLP of the zoo (Gemm layers with [out, in] weights, ReLU between layers) in numpy, float32."""
import numpy as np


def init_params(sizes, rng):
    """He-normal weights (1/sqrt(fan_in) for the last layer, as the zoo builder does), zero biases."""
    params = {}
    for i in range(len(sizes) - 1):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        last = i + 2 == len(sizes)
        std = 1 / np.sqrt(fan_in) if last else np.sqrt(2 / fan_in)
        params[f"fc{i}.weight"] = (rng.standard_normal((fan_out, fan_in)) * std).astype(np.float32)
        params[f"fc{i}.bias"] = np.zeros(fan_out, dtype=np.float32)
    return params


def layer_count(params):
    return sum(1 for k in params if k.endswith(".weight"))


def forward(params, x):
    """Logits, plus the activations backward() needs."""
    acts = [x]
    n = layer_count(params)
    for i in range(n):
        z = acts[-1] @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
        acts.append(np.maximum(z, 0) if i + 1 < n else z)
    return acts[-1], acts


def softmax_xent(logits, y):
    """Mean cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))
    grad = p
    grad[np.arange(len(y)), y] -= 1
    return float(loss), grad / len(y)


def backward(params, acts, grad):
    grads = {}
    for i in reversed(range(layer_count(params))):
        grads[f"fc{i}.weight"] = grad.T @ acts[i]
        grads[f"fc{i}.bias"] = grad.sum(axis=0)
        if i > 0:
            grad = (grad @ params[f"fc{i}.weight"]) * (acts[i] > 0)
    return grads


def accuracy(params, x, y, batch=1000):
    hits = 0
    for s in range(0, len(y), batch):
        logits, _ = forward(params, x[s : s + batch])
        hits += int((logits.argmax(axis=1) == y[s : s + batch]).sum())
    return hits / len(y)


class Adam:
    """Adam with decoupled weight decay (AdamW) on the weights only."""

    def __init__(self, params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, betas[0], betas[1], eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params, grads, lr=None):
        lr = self.lr if lr is None else lr
        self.t += 1
        c1 = 1 - self.b1**self.t
        c2 = 1 - self.b2**self.t
        for k, g in grads.items():
            self.m[k] = self.b1 * self.m[k] + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v[k] + (1 - self.b2) * g * g
            update = (self.m[k] / c1) / (np.sqrt(self.v[k] / c2) + self.eps)
            if self.wd > 0 and k.endswith(".weight"):
                update = update + self.wd * params[k]
            params[k] = (params[k] - lr * update).astype(np.float32)
