// bench-ort.js -- ONNX Runtime (CPU, onnxruntime-node) throughput on an ONNX
// model with random input, for scripts/bench. Prints one line:
//   ort size=N batch=N threads=N images_per_s=X ms_per_batch=Y
// Usage: node bench-ort.js MODEL SIZE BATCH THREADS SECONDS CHANNELS [IMAGES]
// With IMAGES, instead runs exactly IMAGES images (batches of BATCH, the last
// one smaller) once, without a warm-up, and prints
//   ort size=N batch=N threads=N images=N
// for a caller that times the whole process (session creation included).
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, size, batch, threads, seconds, channels, images] = process.argv.slice(2);
  const S = parseInt(size, 10), B = parseInt(batch, 10), T = parseInt(threads, 10);
  const C = parseInt(channels, 10), secs = parseFloat(seconds);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: T,
    interOpNumThreads: 1,
  });
  const feedsOf = (b) => {
    const n = b * C * S * S;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = ((i * 2654435761) % 2001) * 1e-3 - 1.0;
    return { [session.inputNames[0]]: new ort.Tensor('float32', data, [b, C, S, S]) };
  };
  if (images !== undefined) {
    const total = parseInt(images, 10);
    for (let done = 0; done < total; done += B)
      await session.run(feedsOf(Math.min(B, total - done)));
    console.log(`ort size=${S} batch=${B} threads=${T} images=${total}`);
    return;
  }
  const feeds = feedsOf(B);
  await session.run(feeds); // warm-up
  let reps = 0;
  const t0 = process.hrtime.bigint();
  let t = 0;
  do {
    await session.run(feeds);
    reps++;
    t = Number(process.hrtime.bigint() - t0) * 1e-9;
  } while (t < secs || reps < 3);
  console.log(`ort size=${S} batch=${B} threads=${T} images_per_s=${(B * reps / t).toFixed(2)} ` +
              `ms_per_batch=${(1e3 * t / reps).toFixed(3)}`);
}

main().catch((e) => { console.error('bench-ort: ' + e.message); process.exit(1); });
