"""Train the small vessel U-Net that `vesselkit_angio::unet` runs, on DCA1 *train* images only.

The shipped model:

    cargo run --release -p vesselkit-angio --example dca1_features -- FEAT
    python scripts/train_unet.py --data ../shared/data/xca-dca1-subset --features FEAT \
        --holdout 0 --steps 3000 --out crates/vesselkit-angio/models/unet_dca1.bin
    python scripts/train_unet.py --out crates/vesselkit-angio/models/unet_dca1.bin \
        --data . --golden crates/vesselkit-angio/tests/data/unet_golden.bin

Needs jax, optax, numpy and pillow (not part of the test setup: the weights are committed).
Images 1-32 of `train/` fit the model and 33-40 pick the step count and threshold
(`--holdout 0` fits all 40 for the given `--steps`); `test/` is never read. `--features DIR`
adds the filter maps `examples/dca1_features.rs` writes as two more inputs; `--ema D` saves a
moving average of the weights (decay D per step) instead of the last step's; `--levels` sets
the depth; `--ensemble A.bin B.bin ...` prints the held-out Dice of each model and of their mean
probability. `--init W.bin` starts from a weight file's network instead of random weights:
fine-tuning, e.g. of the shipped model on one's own annotated frames laid out as
`DATA/train/N.png` and `N_gt.png` (N = 1 to `--count`) with `dca1_features` run on DATA.
Files written one after the other (`cat a.bin b.bin > both.bin`) are an ensemble to
`UnetModel::from_bytes`.

The network at the default three levels (channels c, 2c, 4c; "same" zero padding;
nearest-neighbour upsampling; each further level adds two convolutions of twice the width):
    e1 = relu(conv3(relu(conv3(x))))            c   full size
    e2 = relu(conv3(relu(conv3(pool(e1)))))     2c  1/2
    b  = relu(conv3(relu(conv3(pool(e2)))))     4c  1/4
    d2 = relu(conv3(relu(conv3([up(b), e2]))))  2c  1/2
    d1 = relu(conv3(relu(conv3([up(d2), e1])))) c   full size
    logit = conv1(d1)
The input is the frame with vessels dark, standardised per image (mean 0, SD 1).

Weight file (little endian): b"VKUNET01", u32 base channels, u32 layer count, then per layer
u32 out, u32 in, u32 k, f32 weights [out][in][k][k], f32 bias [out].
"""

import argparse
import struct
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

def LAYERS(c, inputs=1, levels=3):
    """(in, out, k) per convolution: two per encoder level, two per decoder level, a 1x1 head."""
    out = []
    for i in range(levels):
        out += [(inputs if i == 0 else c << (i - 1), c << i, 3), (c << i, c << i, 3)]
    for i in reversed(range(levels - 1)):
        out += [((c << (i + 1)) + (c << i), c << i, 3), (c << i, c << i, 3)]
    return out + [(c, 1, 1)]


def standardise(img):
    img = img.astype(np.float32)
    return (img - img.mean()) / max(img.std(), 1e-6)


def load(root, split, ids, features=None):
    """Frames (N, H, W, planes) and masks (N, H, W); with `features`, each frame's filter maps
    from `examples/dca1_features.rs` follow the standardised frame."""
    xs, ys = [], []
    for i in ids:
        x = standardise(np.array(Image.open(root / split / f"{i}.png").convert("L")))
        planes = [x]
        if features is not None:
            f = np.fromfile(features / f"{split}_{i}.f32", "<f4").reshape(2, *x.shape)
            planes += [f[0], f[1]]
        xs.append(np.stack(planes, -1))
        ys.append((np.array(Image.open(root / split / f"{i}_gt.png").convert("L")) > 127).astype(np.float32))
    return np.stack(xs), np.stack(ys)


def init(key, c, inputs, levels=3):
    params = []
    for (cin, cout, k) in LAYERS(c, inputs, levels):
        key, sub = jax.random.split(key)
        w = jax.random.normal(sub, (k, k, cin, cout)) * np.sqrt(2.0 / (k * k * cin))
        params.append((w, jnp.zeros(cout)))
    return params


def conv(x, p):
    w, b = p
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b


def pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def up(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def forward(params, x):
    r = jax.nn.relu
    levels = (len(params) + 1) // 4
    skips = []
    for i in range(levels):
        x = r(conv(r(conv(pool(x) if i else x, params[2 * i])), params[2 * i + 1]))
        skips.append(x)
    at = 2 * levels
    for skip in reversed(skips[:-1]):
        x = jnp.concatenate([up(x), skip], -1)
        x = r(conv(r(conv(x, params[at])), params[at + 1]))
        at += 2
    return conv(x, params[at])[..., 0]


def forward_any(params, x):
    """`forward` on frames of any size: zero-padded to a multiple of the coarsest stride, as
    the Rust side does, and cropped back."""
    m = 1 << ((len(params) + 1) // 4 - 1)
    h, w = x.shape[1:3]
    x = jnp.pad(x, ((0, 0), (0, -h % m), (0, -w % m), (0, 0)))
    return forward(params, x)[:, :h, :w]


def loss_fn(params, x, y):
    logit = forward(params, x)
    bce = optax.sigmoid_binary_cross_entropy(logit, y).mean()
    p = jax.nn.sigmoid(logit)
    dice = (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
    return bce + (1 - dice)


def resize(a, size):
    """Bilinear resize of an (H, W) float plane to (size, size)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F").resize((size, size), Image.BILINEAR))


def augment(rng, xs, ys, batch, crop, zoom=0.0):
    n, h, w, _ = xs.shape
    bx, by = [], []
    for _ in range(batch):
        i = rng.integers(n)
        # with `zoom`, a window of crop * f px (f log-uniform in 1/(1+zoom)..1+zoom) resized to crop
        side = min(h, w, int(round(crop * np.exp(rng.uniform(-1, 1) * np.log1p(zoom))))) if zoom else crop
        r0, c0 = rng.integers(h - side + 1), rng.integers(w - side + 1)
        x, y = xs[i, r0:r0 + side, c0:c0 + side], ys[i, r0:r0 + side, c0:c0 + side]
        if side != crop:
            x = np.stack([resize(x[..., j], crop) for j in range(x.shape[-1])], -1)
            y = (resize(y, crop) > 0.5).astype(np.float32)
        k = rng.integers(4)
        x, y = np.rot90(x, k), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        # contrast, a smooth brightness ramp and noise; the model sees standardised frames
        # on the frame plane only; the filter maps are computed from the frame as it is
        x = np.array(x)
        f = x[..., 0] * rng.uniform(0.8, 1.25) + rng.normal(0, 0.1)
        ramp = np.linspace(-1, 1, crop, dtype=np.float32)
        f = f + rng.normal(0, 0.15) * ramp[None, :] + rng.normal(0, 0.15) * ramp[:, None]
        x[..., 0] = f + rng.normal(0, rng.uniform(0, 0.15), f.shape).astype(np.float32)
        bx.append(np.ascontiguousarray(x))
        by.append(np.ascontiguousarray(y))
    return np.stack(bx).astype(np.float32), np.stack(by).astype(np.float32)


def dice_at(prob, y, t):
    m = prob > t
    return 2 * (m & (y > 0.5)).sum() / max(m.sum() + (y > 0.5).sum(), 1)


def save(path, params, c):
    with open(path, "wb") as f:
        f.write(b"VKUNET01")
        f.write(struct.pack("<II", c, len(params)))
        for (w, b) in params:
            w = np.asarray(w, dtype=np.float32)  # (k, k, in, out)
            k, _, cin, cout = w.shape
            f.write(struct.pack("<III", cout, cin, k))
            f.write(np.ascontiguousarray(w.transpose(3, 2, 0, 1)).astype("<f4").tobytes())
            f.write(np.asarray(b, dtype="<f4").tobytes())


def read(path):
    """The networks of a weight file: one, or several written one after the other (an
    ensemble, e.g. `cat a.bin b.bin > ensemble.bin`)."""
    b = Path(path).read_bytes()
    at, nets = 0, []
    while at < len(b):
        assert b[at:at + 8] == b"VKUNET01"
        c, n = struct.unpack_from("<II", b, at + 8)
        at, params = at + 16, []
        for _ in range(n):
            cout, cin, k = struct.unpack_from("<III", b, at)
            at += 12
            w = np.frombuffer(b, "<f4", cout * cin * k * k, at).reshape(cout, cin, k, k)
            at += w.nbytes
            bias = np.frombuffer(b, "<f4", cout, at)
            at += bias.nbytes
            params.append((jnp.asarray(w.transpose(2, 3, 1, 0)), jnp.asarray(bias)))
        nets.append(params)
    return nets


def ensemble_logits(nets, x):
    """Logits of the members' mean probability (the member's own logits for one network),
    as `UnetModel::logits_with` computes them."""
    if len(nets) == 1:
        return forward_any(nets[0], x)
    p = jnp.mean(jnp.stack([jax.nn.sigmoid(forward_any(n, x)) for n in nets]), 0)
    p = jnp.clip(p, 1e-7, 1 - 1e-7)
    return jnp.log(p / (1 - p))


def write_golden(model, out):
    """Logits of the model in `model` for a 23 x 18 frame, as the Rust side computes them:
    standardised, zero-padded to the coarsest stride, cropped back."""
    nets = read(model)
    inputs = nets[0][0][0].shape[2]
    rng = np.random.default_rng(7)
    g = rng.normal(size=(23, 18)).astype(np.float32) * 30 + 120
    extra = [rng.uniform(0, 1.5, size=(23, 18)).astype(np.float32) for _ in range(inputs - 1)]
    x = np.stack([standardise(g), *extra], -1)
    logit = np.asarray(ensemble_logits(nets, jnp.asarray(x)[None]))[0]
    Path(out).write_bytes(b"".join(a.astype("<f4").tobytes() for a in [g, *extra, logit]))


def report_ensemble(models, xv, yv):
    """Held-out Dice of each model and of their mean probability, plain and with the 8 flips."""
    def tta(params, x):
        acc = 0
        for k in range(4):
            for flip in (False, True):
                xr = jnp.rot90(x, k, axes=(1, 2))
                xr = xr[:, :, ::-1] if flip else xr
                p = jax.nn.sigmoid(forward_any(params, xr))
                p = p[:, :, ::-1] if flip else p
                acc = acc + jnp.rot90(p, -k, axes=(1, 2))
        return acc / 8

    def dice(prob):
        return " ".join(f"{t}:{np.mean([dice_at(p, y, t) for p, y in zip(prob, yv)]):.4f}" for t in (0.4, 0.5))

    plain, flips = [], []
    for m in models:
        params = read(m)[0]
        plain.append(np.asarray(jax.nn.sigmoid(forward_any(params, xv))))
        flips.append(np.asarray(tta(params, xv)))
        print(f"{m}: {dice(plain[-1])}  flips {dice(flips[-1])}", flush=True)
    print(f"mean of {len(models)}: {dice(np.mean(plain, 0))}  flips {dice(np.mean(flips, 0))}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--levels", type=int, default=3, help="resolution levels (3: full, 1/2, 1/4)")
    ap.add_argument("--ensemble", type=Path, nargs="+", help="report held-out Dice of these models' mean probability and stop")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--holdout", type=int, default=8, help="last N train images held out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zoom", type=float, default=0.0, help="scale augmentation: crops zoomed by up to 1 + zoom either way")
    ap.add_argument("--ema", type=float, default=0.0, help="save an exponential moving average of the weights with this decay")
    ap.add_argument("--features", type=Path, help="filter maps from examples/dca1_features.rs (3-input model)")
    ap.add_argument("--init", type=Path, help="start from this weight file's network (fine-tuning) instead of random weights")
    ap.add_argument("--count", type=int, default=40, help="images in DATA/train (numbered from 1)")
    ap.add_argument("--golden", type=Path, help="write a 23 x 18 test input and its logits (raw f32 LE) and stop")
    a = ap.parse_args()
    if a.golden:
        return write_golden(a.out, a.golden)

    ids = list(range(1, a.count + 1))
    fit_ids, val_ids = ids[: len(ids) - a.holdout], ids[len(ids) - a.holdout:]
    xs, ys = load(a.data, "train", fit_ids, a.features)
    xv, yv = load(a.data, "train", val_ids, a.features) if val_ids else (None, None)
    if a.ensemble:
        return report_ensemble(a.ensemble, xv, yv)
    if a.init:
        params = read(a.init)[0]
        a.channels = int(params[0][0].shape[-1])  # the file's width, not the flag's
        if params[0][0].shape[2] != xs.shape[-1]:
            raise SystemExit(f"{a.init} takes {params[0][0].shape[2]} inputs, the data gives {xs.shape[-1]}")
    else:
        params = init(jax.random.PRNGKey(a.seed), a.channels, xs.shape[-1], a.levels)
    # 100 warm-up steps, or a tenth of a shorter run (optax needs the decay to outlast them)
    sched = optax.warmup_cosine_decay_schedule(0.0, a.lr, min(100, a.steps // 10), a.steps, a.lr * 0.02)
    opt = optax.adam(sched)
    state = opt.init(params)

    @jax.jit
    def step(params, state, x, y):
        l, g = jax.value_and_grad(loss_fn)(params, x, y)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state, l

    predict = jax.jit(lambda p, x: jax.nn.sigmoid(forward_any(p, x)))
    ema, decay = params, a.ema
    ema_step = jax.jit(lambda e, p: jax.tree_util.tree_map(lambda u, v: u * decay + v * (1 - decay), e, p))
    rng = np.random.default_rng(a.seed)
    t0, losses = time.time(), []
    for s in range(1, a.steps + 1):
        x, y = augment(rng, xs, ys, a.batch, a.crop, a.zoom)
        params, state, l = step(params, state, x, y)
        if a.ema:
            ema = ema_step(ema, params)
        losses.append(float(l))
        if s % 250 == 0 or s == a.steps:
            msg = f"step {s} loss {np.mean(losses[-250:]):.4f} {time.time() - t0:.0f}s"
            if xv is not None:
                for name, p_ in [("val dice", params)] + ([("ema", ema)] if a.ema else []):
                    pv = np.asarray(predict(p_, xv))
                    msg += f" {name} " + " ".join(
                        f"{t}:{np.mean([dice_at(p, y, t) for p, y in zip(pv, yv)]):.4f}" for t in (0.3, 0.4, 0.5, 0.6))
            print(msg, flush=True)
            save(a.out, ema if a.ema else params, a.channels)


if __name__ == "__main__":
    main()
