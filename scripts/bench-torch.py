#!/usr/bin/python3
"""PyTorch (Debian's python3-torch) throughput for scripts/bench.

Usage: bench-torch.py ARCH WEIGHTS SIZE BATCH THREADS SECONDS CHANNELS [MODE]
Rebuilds the same network canopy runs (scripts/canopy_models.py), loads the
weights the ONNX file was exported from, and times it on random input.
MODE "fast" (default): PyTorch's fastest CPU mode, torch.jit.trace +
torch.jit.optimize_for_inference (oneDNN convolutions with prepacked
weights). MODE "eager": the module itself under torch.no_grad(), as fastai's
Learner.predict / get_preds run it. Prints:
  torch size=N batch=N threads=N mode=M images_per_s=X ms_per_batch=Y
The caller sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to THREADS as well.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import canopy_models  # noqa: E402


def main():
    arch, weights, size, batch, threads, seconds, channels = sys.argv[1:8]
    mode = sys.argv[8] if len(sys.argv) > 8 else "fast"
    if mode not in ("fast", "eager"):
        sys.exit("bench-torch.py: MODE must be fast or eager, not %r" % mode)
    size, batch, threads, channels = int(size), int(batch), int(threads), int(channels)
    seconds = float(seconds)
    torch.set_num_threads(threads)
    model = canopy_models.build_model(arch, 17, in_channels=channels, head="fastai")
    canopy_models.load_weights(model, weights)
    model.eval()
    x = torch.rand(batch, channels, size, size) * 2 - 1
    with torch.no_grad():
        if mode == "fast":
            fast = torch.jit.optimize_for_inference(torch.jit.trace(model, x))
        else:
            fast = model
        fast(x)
        fast(x)
        reps = 0
        t0 = time.perf_counter()
        while True:
            fast(x)
            reps += 1
            t = time.perf_counter() - t0
            if t >= seconds and reps >= 3:
                break
    print("torch size=%d batch=%d threads=%d mode=%s images_per_s=%.2f ms_per_batch=%.3f"
          % (size, batch, threads, mode, batch * reps / t, 1e3 * t / reps))


if __name__ == "__main__":
    main()
