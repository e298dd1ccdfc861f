"""Train the in-project CLIP model (``shotbank-tiny`` / ``synthetic-v1``) on synthetic pictures.

No registry package ships real CLIP weights, so tests use a small open_clip model the
project trains itself: the ``shotbank-tiny`` architecture (``scoring/model_configs/``)
learns the synthetic world of :mod:`scoring.synthetic` (colours x shapes under high-key,
low-key, natural and silhouette lighting) from captions drawn on the fly, on CPU, in a
few minutes, with a fixed seed. The script then

1. saves the weights as safetensors (fp16; token embeddings of words no caption uses are
   zeroed, which changes nothing the model was taught and lets git compress the file),
2. pins the file's SHA-256 and size in ``scoring/pretrained.json``,
3. loads the file back through :func:`scoring.models.load_model`, exactly as the tests
   do, and prints the zero-shot accuracy on held-out pictures it never trained on.

Retraining gives a model of similar accuracy, not the same bytes (CPU kernels differ
between machines): the committed file and its pin are the reference, and tests never
retrain. Usage::

    nice -n 19 .venv/bin/python scripts/train_tiny_clip.py            # the committed run
    .venv/bin/python scripts/train_tiny_clip.py --steps 50 --out tiny.safetensors --no-pin
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from scoring._openclip import open_clip
from scoring.models import TEST_MODEL, ScoringModel, load_model
from scoring.pretrained import REGISTRY_PATH, WEIGHTS_DIR, sha256_file
from scoring.synthetic import (
    COLOURS,
    LIGHTING,
    SHAPES,
    TEXTURES,
    Scene,
    caption_matches,
    captions,
    describe,
    lighting_phrase,
    random_scene,
    render,
    sample_caption,
    scenes,
)
from shotbank.annotation.vocabulary import LightingSetup

NAME, TAG = TEST_MODEL
HELD_OUT_SEED_OFFSET = 1_000_003


def _picture(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """A training picture at a random frame size and aspect, as frames will arrive."""
    width = int(rng.integers(64, 129))
    aspect = float(rng.choice([1.0, 4 / 3, 16 / 9]))
    portrait = rng.uniform() < 0.15
    height = max(64, round(width / aspect))
    if portrait:
        width, height = height, width
    return Image.fromarray(render(scene, width=width, height=height, rng=rng), "RGB")


def _soft_cross_entropy(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against targets spread evenly over every true pairing (a batch holds
    many pictures a caption like "a red circle" is true of)."""
    target = positives / positives.sum(dim=1, keepdim=True)
    return -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()


def train(args: argparse.Namespace) -> tuple[torch.nn.Module, float]:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model, preprocess, _ = open_clip.create_model_and_transforms(NAME)
    tokenizer = open_clip.get_tokenizer(NAME)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    warmup = max(1, args.steps // 20)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    started = time.monotonic()
    for step in range(args.steps):
        batch_scenes = [random_scene(rng) for _ in range(args.batch)]
        images = torch.stack([preprocess(_picture(s, rng)) for s in batch_scenes])
        batch_captions = [sample_caption(s, rng) for s in batch_scenes]
        unique = list({c.text: c for c in batch_captions}.values())
        positives = torch.tensor(
            [[caption_matches(c, s) for c in unique] for s in batch_scenes], dtype=torch.float32
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            image_features = model.encode_image(images, normalize=True)
            text_features = model.encode_text(tokenizer([c.text for c in unique]), normalize=True)
        logits = model.logit_scale.exp() * image_features.float() @ text_features.float().T
        loss = (
            _soft_cross_entropy(logits, positives) + _soft_cross_entropy(logits.T, positives.T)
        ) / 2
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        lr_schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == args.steps - 1:
            elapsed = time.monotonic() - started
            print(
                f"step {step:4d}/{args.steps}  loss {loss.item():.3f}  {elapsed:6.0f} s", flush=True
            )
    return model, time.monotonic() - started


def save(model: torch.nn.Module, path: Path, args: argparse.Namespace) -> None:
    tokenizer = open_clip.get_tokenizer(NAME)
    texts = {c.text for scene in scenes() for c in captions(scene)}
    used = torch.unique(tokenizer(sorted(texts)))
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    embedding = state["token_embedding.weight"]
    keep = torch.zeros(embedding.shape[0], dtype=torch.bool)
    keep[used] = True
    embedding[~keep] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "model": NAME,
        "tag": TAG,
        "trained_by": "scripts/train_tiny_clip.py",
        "seed": str(args.seed),
        "steps": str(args.steps),
        "batch": str(args.batch),
    }
    save_file(state, str(path), metadata=metadata)


def pin(path: Path, sha256: str, args: argparse.Namespace) -> None:
    registry = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    entry = registry["models"][NAME][TAG]
    entry.update(
        file=path.name,
        sha256=sha256,
        size=path.stat().st_size,
        source=(
            "in-project: scripts/train_tiny_clip.py "
            f"--seed {args.seed} --steps {args.steps} --batch {args.batch}"
        ),
    )
    REGISTRY_PATH.write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")


def evaluate(scorer: ScoringModel, seed: int, count: int) -> dict[str, float]:
    """Zero-shot accuracy on held-out pictures (a seed the training never drew from)."""
    rng = np.random.default_rng(seed + HELD_OUT_SEED_OFFSET)
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    object_prompts = [describe(c, s) for c, s in pairs]
    lighting_prompts = [f"{lighting_phrase(setup)} lighting" for setup in LIGHTING]
    visible = [setup for setup in LIGHTING if setup is not LightingSetup.SILHOUETTE]
    lit_scenes = []
    for _ in range(count):
        colour, shape = pairs[int(rng.integers(len(pairs)))]
        setup = visible[int(rng.integers(len(visible)))]
        lit_scenes.append(Scene(colour, shape, setup, TEXTURES[int(rng.integers(len(TEXTURES)))]))
    all_scenes = [random_scene(rng) for _ in range(count)]
    results: dict[str, float] = {}
    for label, size in (("64x64", (64, 64)), ("320x180 frames", (320, 180))):
        frames = [render(s, width=size[0], height=size[1], rng=rng) for s in lit_scenes]
        probs = scorer.zero_shot(frames, object_prompts)
        truth = [pairs.index((s.colour, s.shape)) for s in lit_scenes]
        results[f"colour x shape ({len(pairs)}-way), {label}"] = float(
            np.mean(probs.argmax(1) == np.array(truth))
        )
    frames = [render(s, width=64, rng=rng) for s in all_scenes]
    probs = scorer.zero_shot(frames, lighting_prompts)
    truth = [LIGHTING.index(s.lighting) for s in all_scenes]
    results[f"lighting ({len(LIGHTING)}-way), 64x64"] = float(np.mean(probs.argmax(1) == truth))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy 2-core box")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false")
    parser.add_argument("--eval-count", type=int, default=480)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR / f"{NAME}-{TAG}.safetensors")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="leave the registry alone"
    )
    args = parser.parse_args()

    # Denormals from tiny gradients make CPU training about 3x slower.
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    model, seconds = train(args)
    params = sum(p.numel() for p in model.parameters())
    save(model, args.out, args)
    sha256 = sha256_file(args.out)
    if args.pin:
        pin(args.out, sha256, args)
    scorer = load_model(NAME, args.out, device="cpu", precision="fp32", expected_sha256=sha256)
    print(f"model     {NAME}/{TAG}: {params / 1e6:.2f} M parameters")
    print(f"trained   {args.steps} steps x {args.batch} pictures in {seconds / 60:.1f} min")
    print(f"weights   {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) sha256 {sha256}")
    for name, accuracy in evaluate(scorer, args.seed, args.eval_count).items():
        print(f"held-out zero-shot accuracy, {name}: {accuracy:.3f}")


if __name__ == "__main__":
    main()
