/**
 * A small seeded PRNG for fuzz tests, so that a failing case reproduces from its seed.
 *
 * @module
 */

/**
 * mulberry32: returns a function giving numbers in [0, 1).
 *
 * @example
 * ```ts
 * const rnd = prng(42);
 * const byte = Math.floor(rnd() * 256);
 * ```
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
