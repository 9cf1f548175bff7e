/**
 * The pieces of a secret the redaction tests look for.
 *
 * @module
 */
import { MIN_SECRET_PIECE } from "../redact.ts";

/** Every piece of `secret` of `n` characters (a longer piece always contains one). */
export function piecesOf(secret: string, n = MIN_SECRET_PIECE): string[] {
  const out = new Set<string>();
  for (let i = 0; i + n <= secret.length; i++) out.add(secret.slice(i, i + n));
  return [...out];
}
