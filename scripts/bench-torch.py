#!/usr/bin/python3
"""PyTorch (Debian's python3-torch) throughput for scripts/bench.

Usage: bench-torch.py ARCH WEIGHTS SIZE BATCH THREADS SECONDS CHANNELS
Rebuilds the same network canopy runs (scripts/canopy_models.py), loads the
weights the ONNX file was exported from, and times its fastest CPU mode
(torch.jit.trace + torch.jit.optimize_for_inference) on random input. Prints:
  torch size=N batch=N threads=N images_per_s=X ms_per_batch=Y
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
    size, batch, threads, channels = int(size), int(batch), int(threads), int(channels)
    seconds = float(seconds)
    torch.set_num_threads(threads)
    model = canopy_models.build_model(arch, 17, in_channels=channels, head="fastai")
    canopy_models.load_weights(model, weights)
    model.eval()
    x = torch.rand(batch, channels, size, size) * 2 - 1
    with torch.no_grad():
        traced = torch.jit.trace(model, x)
        fast = torch.jit.optimize_for_inference(traced)
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
    print("torch size=%d batch=%d threads=%d images_per_s=%.2f ms_per_batch=%.3f"
          % (size, batch, threads, batch * reps / t, 1e3 * t / reps))


if __name__ == "__main__":
    main()
